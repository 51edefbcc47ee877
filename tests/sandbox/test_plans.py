"""Plan detection from a repository's files and the `.github/aura-sicd.yml` overrides."""

from __future__ import annotations

import pytest

from sandbox import RepoConfigError, SandboxRepoConfig, detect_plan, load_sandbox_config
from sandbox.python_env import PIP_INSTALL

from .conftest import write_tree


def names(plan):
    return [c.name for c in plan.checks]


def test_plain_python_repository_needs_no_setup(tmp_path):
    plan = detect_plan(write_tree(tmp_path, {"calc.py": "x = 1\n", "tests/test_calc.py": "def test(): pass\n"}))
    assert plan.language == "python" and plan.setup == [] and plan.dependency_files == []
    assert names(plan) == ["syntax", "lint", "tests"]
    lint = plan.checks[1]
    assert "--select" in lint.command and "E9,F63,F7,F82" in lint.command  # errors only without ruff config
    assert plan.checks[2].parser == "pytest"


def test_pyproject_with_test_extra_ruff_and_mypy(tmp_path):
    repo = write_tree(tmp_path, {
        "pyproject.toml": ("[project]\nname='x'\nversion='1'\n[project.optional-dependencies]\ntests=['pytest']\n"
                           "[tool.ruff]\nline-length=100\n[tool.mypy]\nstrict=true\n"),
        "requirements-dev.txt": "requests\n",
    })
    plan = detect_plan(repo)
    assert plan.setup == [[*PIP_INSTALL, "-r", "requirements-dev.txt", "-e", ".[tests]"]]
    assert names(plan) == ["syntax", "lint", "types", "tests"]
    assert "--select" not in plan.checks[1].command  # the repository configures ruff
    assert plan.checks[2].command[-1] == "."
    assert plan.dependency_files == ["pyproject.toml", "requirements-dev.txt"]


def test_setup_cfg_extras_and_mypy_ini_with_files(tmp_path):
    repo = write_tree(tmp_path, {
        "setup.cfg": "[metadata]\nname = x\n[options.extras_require]\ntest = pytest\n",
        "setup.py": "from setuptools import setup\nsetup()\n",
        "mypy.ini": "[mypy]\nfiles = src\n",
    })
    plan = detect_plan(repo)
    assert plan.setup[0][-1] == ".[test]"
    types = next(c for c in plan.checks if c.name == "types")
    assert types.command[-1] != "."  # mypy reads `files` from its config


def test_pyproject_with_tool_config_only_is_not_installed(tmp_path):
    plan = detect_plan(write_tree(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 90\n"}))
    assert plan.setup == []
    assert plan.dependency_files == ["pyproject.toml"]


def test_javascript_and_go_plans(tmp_path):
    js = detect_plan(write_tree(tmp_path / "js", {
        "package.json": '{"scripts": {"test": "jest"}, "devDependencies": {"typescript": "5", "jest": "29"}}',
        "package-lock.json": "{}", "tsconfig.json": "{}"}))
    assert js.language == "javascript"
    assert js.setup[0] == ["npm", "ci", "--no-audit", "--no-fund"] and js.env_links == ["node_modules"]
    assert js.setup[1] == ["sh", "-c", "rm -rf node_modules/.cache && ln -s /tmp/node-cache node_modules/.cache"
                                       " && mkdir -p node_modules/.vite-temp"]
    assert js.env_scratch == ["node_modules/.vite-temp"]  # writable in the checks, node_modules is not
    assert names(js) == ["types", "tests"] and js.checks[-1].parser == "node"
    bare_js = detect_plan(write_tree(tmp_path / "bare", {"package.json": '{"scripts": {"test": "node --test"}}'}))
    assert bare_js.setup == [] and bare_js.env_links == []

    go = detect_plan(write_tree(tmp_path / "go", {"go.mod": "module x\n", "go.sum": ""}))
    assert go.language == "go" and go.setup == [["go", "mod", "download"]]
    assert [c.command for c in go.checks] == [["go", "vet", "./..."], ["go", "test", "-json", "./..."]]
    assert go.env["GOMODCACHE"] == "/opt/aura-env/gomod"


def test_repo_config_overrides_and_ignores_the_bots_keys(tmp_path):
    repo = write_tree(tmp_path, {"calc.py": "", ".github/aura-sicd.yml": (
        "max_iterations: 3\nallow_paths: ['src/**']\n"  # the bot's keys: not ours, not rejected
        "setup: make deps\nimage: my/image:1\n"
        "checks:\n  - name: unit\n    run: tox -e py -- -q\n  - name: style\n    run: [black, --check, .]\n    required: false\n")})
    plan = detect_plan(repo)
    assert plan.setup == [["sh", "-c", "make deps"]]
    assert plan.image == "my/image:1"
    assert [(c.name, c.command, c.parser, c.required) for c in plan.checks] == [
        ("unit", ["sh", "-c", "tox -e py -- -q"], "none", True),
        ("style", ["black", "--check", "."], "none", False),
    ]


def test_repo_config_parser_detection_and_empty_setup(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n", ".github/aura-sicd.yml": (
        "setup: []\nchecks:\n  - {name: tests, run: python -m pytest -x}\n  - {name: js, run: npm test}\n")})
    plan = detect_plan(repo)
    assert plan.setup == []
    assert [c.parser for c in plan.checks] == ["pytest", "node"]


@pytest.mark.parametrize("text, fragment", [
    ("checks: 5\n", "checks: Input should be a valid list"),
    ("checks:\n  - name: a\n", "checks.0.run: Field required"),
    ("checks:\n  - {name: a, run: x, colour: red}\n", "checks.0.colour: Extra inputs are not permitted"),
    ("checks:\n  - {name: a, run: x}\n  - {name: a, run: y}\n", "check names must be unique, repeated: a"),
    ("checks:\n  - {name: a, run: []}\n", "must be a non-empty string"),
    ("setup: {a: b}\n", "setup"),
    ("- just\n- a list\n", "must be a mapping"),
    ("checks: [\n", "not valid YAML"),
])
def test_invalid_repo_config_gives_a_clear_error(tmp_path, text, fragment):
    write_tree(tmp_path, {".github/aura-sicd.yml": text})
    with pytest.raises(RepoConfigError) as info:
        load_sandbox_config(tmp_path)
    assert ".github/aura-sicd.yml" in str(info.value)
    assert fragment in str(info.value)


def test_absent_or_empty_config_gives_defaults(tmp_path):
    assert load_sandbox_config(tmp_path) == SandboxRepoConfig()
    write_tree(tmp_path, {".github/aura-sicd.yml": ""})
    assert load_sandbox_config(tmp_path) == SandboxRepoConfig()


def test_broken_pyproject_or_package_json_is_a_config_error(tmp_path):
    with pytest.raises(RepoConfigError, match="pyproject.toml is not valid TOML"):
        detect_plan(write_tree(tmp_path / "a", {"pyproject.toml": "[project\n"}))
    with pytest.raises(RepoConfigError, match="package.json is not valid JSON"):
        detect_plan(write_tree(tmp_path / "b", {"package.json": "{"}))
    with pytest.raises(RepoConfigError, match="is not a directory"):
        detect_plan(tmp_path / "missing")


def test_dependency_hash_follows_the_dependency_files(tmp_path):
    repo = write_tree(tmp_path, {"pyproject.toml": "[project]\nname='x'\nversion='1'\n", "calc.py": "a = 1\n"})
    first = detect_plan(repo).dependency_hash(repo, "base")
    (repo / "calc.py").write_text("a = 2\n")  # source files don't matter
    assert detect_plan(repo).dependency_hash(repo, "base") == first
    assert detect_plan(repo).dependency_hash(repo, "other base") != first
    (repo / "requirements.txt").write_text("requests\n")
    assert detect_plan(repo).dependency_hash(repo, "base") != first


def test_tests_kept_in_a_loose_test_py_are_given_to_pytest(tmp_path):
    """python-slugify keeps its tests in test.py, which pytest's discovery (test_*.py) never collects."""
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='x')\n")
    (tmp_path / "test.py").write_text("def test_x():\n    assert True\n")
    def tests_command(repo):
        return next(c.command for c in detect_plan(repo).checks if c.name == "tests")

    assert tests_command(tmp_path)[-1] == "test.py"
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_more.py").write_text("def test_y():\n    assert True\n")
    assert tests_command(tmp_path)[-1] != "test.py"  # discovery finds tests: left to it


@pytest.mark.parametrize("script, command", [
    ("node --test", ["node", "--test-timeout={test_timeout_ms}", "--test"]),
    ("node --test test/", ["node", "--test-timeout={test_timeout_ms}", "--test", "test/"]),
    ("node --test --test-timeout=5000", ["npm", "test", "--silent"]),  # the project's own limit
    ("xo && node --test", ["npm", "test", "--silent"]),  # a shell line: npm runs it
    ("jest", ["npm", "test", "--silent"]),  # jest, vitest, mocha and ava have their own limits
])
def test_node_test_runner_gets_a_per_test_limit(script, command):
    from sandbox.plans import javascript_test_command

    assert javascript_test_command({"scripts": {"test": script}}) == command
    assert javascript_test_command({"scripts": {"test": script, "pretest": "tsc"}}) == ["npm", "test", "--silent"]


def test_the_limit_is_filled_in_or_left_out():
    from sandbox.runner import with_test_limit

    command = ["node", "--test-timeout={test_timeout_ms}", "--test"]
    assert with_test_limit(command, 60) == ["node", "--test-timeout=60000", "--test"]
    assert with_test_limit(command, 0) == ["node", "--test"]
    assert with_test_limit(["npm", "test"], 60) == ["npm", "test"]
