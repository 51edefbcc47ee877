"""Python environments from a repository's files: dependency groups, requirements files, the tools' dev
dependencies, and versions from git tags."""

from __future__ import annotations

import subprocess

import pytest

from sandbox import RepoConfigError, detect_plan
from sandbox.git_version import git_version, version_from_describe
from sandbox.python_env import PIP_INSTALL, SCM_VERSION_ENV, resolve_group

from .conftest import write_tree


def install_args(plan) -> list[str]:
    [command] = plan.setup
    assert command[: len(PIP_INSTALL)] == PIP_INSTALL
    return command[len(PIP_INSTALL):]


def test_test_dependency_groups_with_included_groups(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": (
        "[project]\nname='x'\nversion='1'\n"
        "[dependency-groups]\n"
        "typing = ['mypy']\n"
        "Tests = ['freezegun', {include-group = 'typing'}, 'pytest>=8']\n"
        "dev = ['tox']\n"
        "docs = ['sphinx']\n"
    )})
    assert install_args(detect_plan(repo)) == ["-e", ".", "freezegun", "mypy", "pytest>=8"]


def test_the_dev_group_when_there_is_no_test_group(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": (
        "[project]\nname='x'\nversion='1'\n[dependency-groups]\ndev = ['pytest', 'hypothesis']\ndocs = ['sphinx']\n"
    )})
    assert install_args(detect_plan(repo)) == ["-e", ".", "pytest", "hypothesis"]


@pytest.mark.parametrize("groups, message", [
    ("a = [{include-group = 'a'}]", "includes itself"),
    ("a = [{include-group = 'missing'}]", "'missing' is not a list"),
    ("a = [5]", "invalid entry 5"),
])
def test_broken_dependency_groups_are_config_errors(groups, message):
    import tomllib

    with pytest.raises(RepoConfigError, match=message):
        resolve_group(tomllib.loads(groups), "a")


def test_test_requirements_files_and_the_test_extra(tmp_path):
    repo = write_tree(tmp_path, {
        "pyproject.toml": "[project]\nname='x'\nversion='1'\n[project.optional-dependencies]\ntesting=['pytest']\n",
        "requirements.txt": "requests\n",
        "requirements-dev.txt": "black\n",
        "requirements_docs.txt": "sphinx\n",
        "requirements/tests.txt": "-r base.txt\nfreezegun\n",
        "requirements/base.txt": "attrs\n",
        "requirements/lint.txt": "ruff\n",
    })
    assert install_args(detect_plan(repo)) == [
        "-r", "requirements-dev.txt", "-r", "requirements.txt", "-r", "requirements/tests.txt", "-e", ".[testing]",
    ]


def test_the_extras_tox_installs_for_the_tests(tmp_path):
    """jaraco.text's tox.ini (as in its repository): its tests import inflect, from an extra of that name."""
    pyproject = ("[project]\nname='x'\nversion='1'\n[project.optional-dependencies]\n"
                 "test=['pytest']\ncheck=['pytest-ruff']\ninflect=['inflect']\ndoc=['sphinx']\n")
    tox = ("[testenv]\ncommands =\n\tpytest {posargs}\nusedevelop = True\nextras =\n\ttest\n\tcheck\n\tcover\n"
           "\tinflect\n\tpy38: legacy\n\n[testenv:docs]\nextras =\n\tdoc\n")
    assert install_args(detect_plan(write_tree(tmp_path / "tox", {"pyproject.toml": pyproject, "tox.ini": tox}))) == [
        "-e", ".[test,check,inflect]"]  # declared ones only; the docs env's are not the tests'
    assert install_args(detect_plan(write_tree(tmp_path / "plain", {"pyproject.toml": pyproject}))) == ["-e", ".[test]"]


def test_poetry_pdm_uv_and_hatch_dev_dependencies(tmp_path):
    poetry = write_tree(tmp_path / "poetry", {"pyproject.toml": (
        "[tool.poetry]\nname='x'\nversion='1'\n"
        "[tool.poetry.dependencies]\npython='^3.10'\n"
        "[tool.poetry.group.test.dependencies]\n"
        "pytest = '^8.1'\nfreezegun = '~1.2'\nmock = '*'\nattrs = '23.1.0'\nhypothesis = '>=6,<7'\n"
        "coverage = {version = '^0.7', extras = ['toml']}\nlocal = {path = '../local'}\nodd = '^1.0 || ^2.0'\n"
        "[tool.poetry.group.docs.dependencies]\nsphinx = '*'\n"
        "[build-system]\nrequires=['poetry-core']\nbuild-backend='poetry.core.masonry.api'\n"
    )})
    assert install_args(detect_plan(poetry)) == [
        "-e", ".", "pytest>=8.1,<9", "freezegun>=1.2,<1.3", "mock", "attrs==23.1.0", "hypothesis>=6,<7",
        "coverage[toml]>=0.7,<0.8", "odd",
    ]
    pdm = write_tree(tmp_path / "pdm", {"pyproject.toml": (
        "[project]\nname='x'\nversion='1'\n[tool.pdm.dev-dependencies]\ntest = ['pytest', '-e file:///${PROJECT_ROOT}/sub']\n"
    )})
    assert install_args(detect_plan(pdm)) == ["-e", ".", "pytest"]
    uv = write_tree(tmp_path / "uv", {"pyproject.toml": "[project]\nname='x'\nversion='1'\n[tool.uv]\ndev-dependencies = ['pytest']\n"})
    assert install_args(detect_plan(uv)) == ["-e", ".", "pytest"]
    hatch = write_tree(tmp_path / "hatch", {"pyproject.toml": (
        "[project]\nname='x'\nversion='1'\n[tool.hatch.envs.default]\ndependencies = ['pytest', 'x @ {root:uri}/x']\n"
    )})
    assert install_args(detect_plan(hatch)) == ["-e", ".", "pytest"]


HATCH_VCS = (
    "[build-system]\nrequires = ['hatchling', 'hatch-vcs']\nbuild-backend = 'hatchling.build'\n"
    "[project]\nname = 'x'\ndynamic = ['version']\n"
    "[tool.hatch]\nversion.source = 'vcs'\nbuild.hooks.vcs.version-file = 'src/x/_version.py'\n"
)


def test_a_version_from_git_goes_into_the_setup_and_the_version_file(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": HATCH_VCS})
    plan = detect_plan(repo, version="1.4.1.dev3")
    assert plan.setup_env == {SCM_VERSION_ENV: "1.4.1.dev3"}
    text = plan.check_files["src/x/_version.py"]
    namespace: dict = {}
    exec(text, namespace)
    assert namespace["__version__"] == "1.4.1.dev3" and namespace["version_tuple"] == (1, 4, 1, "dev3")
    # the version is not part of the setup's cache key: a new commit reuses the environment
    assert detect_plan(repo, version="1.4.1.dev4").dependency_hash(repo) == plan.dependency_hash(repo)
    assert detect_plan(repo).setup_env == {SCM_VERSION_ENV: "0.0.0"}  # no tag, no git


def test_setuptools_scm_version_file_with_its_template(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": (
        "[build-system]\nrequires = ['setuptools>=64', 'setuptools-scm>=8']\nbuild-backend = 'setuptools.build_meta'\n"
        "[project]\nname = 'x'\ndynamic = ['version']\n"
        "[tool.setuptools_scm]\nversion_file = 'x/VERSION'\nwrite_to = 'x/v.py'\nwrite_to_template = 'V = {version!r}'\n"
    )})
    plan = detect_plan(repo, version="2.0")
    assert plan.check_files == {"x/VERSION": "2.0\n", "x/v.py": "V = '2.0'"}
    assert detect_plan(write_tree(tmp_path / "static", {"pyproject.toml": "[project]\nname='x'\nversion='1'\n"}),
                       version="2.0").setup_env == {}


@pytest.mark.parametrize("tag, distance, version", [
    ("v4.16.0", 0, "4.16.0"), ("4.16.0", 5, "4.16.1.dev5"), ("1", 2, "2.dev2"), ("2.0rc1", 0, "2.0rc1"),
    ("v2.0-rc1", 3, "2.0rc2.dev3"),
])
def test_version_from_describe(tag, distance, version):
    assert version_from_describe(tag, distance) == version


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C", str(repo), *args],
                   check=True, capture_output=True)


def test_git_version_from_the_nearest_version_tag(tmp_path):
    repo = write_tree(tmp_path / "repo", {"a.txt": "1\n"})
    assert git_version(repo) is None  # not a git checkout
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    assert git_version(repo) == "0.0.0"  # no tag
    _git(repo, "tag", "v1.2.0")
    assert git_version(repo) == "1.2.0"
    for n in range(2):
        (repo / "a.txt").write_text(f"{n}\n")
        _git(repo, "commit", "-qam", f"change {n}")
    _git(repo, "tag", "1.2.x")  # not a version: passed over
    assert git_version(repo) == "1.2.1.dev2"
    inner = write_tree(repo / "inner", {"b.txt": ""})
    assert git_version(inner) is None  # never the tags of the enclosing repository


def test_malformed_tables_do_not_break_planning(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": (
        "tool = 3\ndependency-groups = ['x']\nbuild-system = {requires = 'hatch-vcs'}\n"
        "[project]\nname = 'x'\nversion = '1'\noptional-dependencies = 'test'\n"
    )})
    assert install_args(detect_plan(repo)) == ["-e", "."]
    odd = write_tree(tmp_path / "odd", {"pyproject.toml": (
        "[project]\nname = 'x'\nversion = '1'\n[tool]\npoetry = {group = {test = 5}}\npdm = {dev-dependencies = {test = 7}}\n"
        "uv = {dev-dependencies = 'pytest'}\nhatch = {envs = {default = 1}, build = 2}\n"
    )})
    assert install_args(detect_plan(odd)) == ["-e", "."]


# itsdangerous's and tomli's hooks as their repositories write them: a frozen rev with its version comment
PRE_COMMIT = """repos:
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: 76e47323a83cd9795e4ff9a1de1c0d2eef610f17  # frozen: v0.11.11
    hooks:
      - id: ruff
  - repo: https://github.com/pre-commit/mirrors-mypy
    rev: v1.19.1
    hooks:
      - id: mypy
        additional_dependencies: [types-requests, "attrs>=23"]
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v5.0.0
    hooks:
      - id: trailing-whitespace
"""


def test_linters_run_at_the_versions_the_pre_commit_hooks_pin(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n",
                                 ".pre-commit-config.yaml": PRE_COMMIT})
    assert install_args(detect_plan(repo)) == ["-e", ".", "ruff==0.11.11", "mypy==1.19.1", "types-requests", "attrs>=23"]
    assert ".pre-commit-config.yaml" in detect_plan(repo).dependency_files  # a new pin is a new environment


def test_a_pin_in_the_dependency_groups_wins_over_the_hook(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n[dependency-groups]\ndev = ['ruff==0.9.0']\n",
                                 ".pre-commit-config.yaml": PRE_COMMIT})
    args = install_args(detect_plan(repo))
    assert "ruff==0.9.0" in args and "ruff==0.11.11" not in args and "mypy==1.19.1" in args


def test_a_linter_the_tests_run_through_its_pytest_plugin_is_not_pinned(tmp_path):
    """jaraco.text: tox installs the `check` extra with pytest-ruff, so ruff's version comes from the resolver,
    as in CI; the pre-commit pin (meant for the lint check) made 7 of its `::ruff` test results differ."""
    pyproject = ("[project]\nname='x'\nversion='1'\n[project.optional-dependencies]\ntest = ['pytest']\n"
                 "check = [\"pytest-ruff >= 0.2.1; sys_platform != 'cygwin'\"]\n")
    repo = write_tree(tmp_path, {"pyproject.toml": pyproject, "tox.ini": "[testenv]\nextras =\n\ttest\n\tcheck\n",
                                 ".pre-commit-config.yaml": PRE_COMMIT})
    args = install_args(detect_plan(repo))
    assert args[:2] == ["-e", ".[test,check]"] and not any(a.startswith("ruff") for a in args)
    assert "mypy==1.19.1" in args  # no pytest-mypy among the extras: the hook's pin stays


def test_an_unreadable_pre_commit_config_pins_nothing(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n",
                                 ".pre-commit-config.yaml": "repos: [\n"})
    assert install_args(detect_plan(repo)) == ["-e", "."]


def test_the_tests_folders_requirements_are_installed(tmp_path):
    """tomli's older commits keep their test dependencies in tests/requirements.txt."""
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n",
                                 "tests/requirements.txt": "python-dateutil\n"})
    assert install_args(detect_plan(repo)) == ["-r", "tests/requirements.txt", "-e", "."]
