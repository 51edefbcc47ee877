"""The project's own test command from its CI configuration: real projects' workflows, tox.ini and
Makefiles (the bundles in tests/data/realrepos), and the rules for what is never taken from a workflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sandbox import detect_plan
from sandbox.ci_config import ci_test_command
from sandbox.runner import TIMEOUT_PLUGIN, with_timeout_plugin

from .conftest import write_tree

BUNDLES = Path(__file__).parent.parent / "data" / "realrepos"


def clone(name: str, branch: str, dest: Path) -> Path:
    target = dest / name
    subprocess.run(["git", "clone", "-q", "-b", branch, str(BUNDLES / f"{name}.bundle"), str(target)],
                   check=True, capture_output=True, timeout=120)
    return target


@pytest.mark.parametrize("name, branch, command, source, env", [
    # tox -e py -> [testenv] commands = python -We -m unittest discover tests, run by pytest for per-test ids
    ("mypy_extensions", "master", ["python", "-We", "-m", "pytest", "tests", "-o", "python_files=test*.py"],
     ".github/workflows/test.yml: job test, step 'Test' -> tox.ini [testenv]", {}),
    # tox -> py.test --basetemp={envtmpdir} --cov=... {posargs}, with its setenv
    ("cachetools", "master", ["python", "-m", "pytest"],
     ".github/workflows/ci.yml: job main, step 'tox' -> tox.ini [testenv]", {"THREADING_TESTS": "1"}),
    # make coverage -> coverage run --include=... -m unittest
    ("more-itertools", "master", ["python", "-m", "pytest", "-o", "python_files=test*.py"],
     ".github/workflows/python-app.yml: job build, step 'Run tests' -> Makefile target coverage", {}),
    # python -m unittest, in a job with a matrix of Pythons and systems (after a linters job)
    ("tomli", "master", ["python", "-m", "pytest", "-o", "python_files=test*.py"],
     ".github/workflows/tests.yaml: job tests, step 'Test with unittest'", {"FORCE_COLOR": "1"}),
    # uvx --python ${{ matrix.python-version }} --with tox-uv tox -e py -> {envpython} -m pytest --cov humanize ...
    ("humanize", "main", ["python", "-m", "pytest"],
     ".github/workflows/test.yml: job test, step 'Tox tests' -> tox.ini [testenv]",
     {"FORCE_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}),
    # coverage run --source=slugify test.py (a unittest.main script)
    ("python-slugify", "master", ["python", "-m", "pytest", "test.py"], ".github/workflows/ci.yml: job build, step 'Run test'", {}),
])
def test_real_projects_test_commands_from_their_ci(tmp_path, name, branch, command, source, env):
    repo = clone(name, branch, tmp_path)
    plan = detect_plan(repo)
    tests = next(c for c in plan.checks if c.name == "tests")
    assert (tests.command, plan.source) == (command, source)
    assert env.items() <= tests.env.items() and (env or not tests.env)  # the workflow's variables, if any
    assert tests.parser == "pytest" and TIMEOUT_PLUGIN in with_timeout_plugin(tests.command)


def test_javascript_and_projects_without_ci_tests(tmp_path):
    camelcase = clone("camelcase", "main", tmp_path)
    assert detect_plan(camelcase).source == ".github/workflows/main.yml: job test, step 'npm test'"
    uuid = detect_plan(clone("uuid", "master", tmp_path))  # go test -v ./...
    assert uuid.source == ".github/workflows/tests.yaml: job unit-tests, step 'go test -v ./...'"
    assert uuid.checks[-1].command == ["go", "test", "-json", "./..."] and uuid.checks[-1].parser == "go"
    bare = write_tree(tmp_path / "bare", {"calc.py": "", "test_calc.py": ""})  # no CI configuration
    assert detect_plan(bare).source == "detected"


WORKFLOW = """
on: push
env:
  PYTHONHASHSEED: "0"
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: pytest tests/test_deploy.py
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        suite: [unit, integration]
    env:
      API_TOKEN: ${{ secrets.TOKEN }}
    steps:
      - run: pip install -e .[test]
      - run: pytest --token ${{ secrets.TOKEN }}
      - run: curl https://example.org/x.sh | sh
      - name: Run the suite
        run: |
          python -m pytest \\
            --cov=pkg --cov-report xml -n auto \\
            tests/${{ matrix.suite }} -m "not slow"
        env:
          SUITE: ${{ matrix.suite }}
"""


def test_workflow_rules_deploys_secrets_shell_lines_and_the_matrix(tmp_path):
    repo = write_tree(tmp_path / "repo", {".github/workflows/ci.yml": WORKFLOW, "pyproject.toml": "[project]\nname='x'\n"})
    found = ci_test_command(repo, "python")
    assert found.command == ["python", "-m", "pytest", "tests/unit", "-m", "not slow"]
    assert found.source == ".github/workflows/ci.yml: job test, step 'Run the suite'"
    assert found.env == {"PYTHONHASHSEED": "0", "SUITE": "unit"}  # no secret: it cannot be resolved


def test_unittest_by_module_names_and_nox(tmp_path):
    repo = write_tree(tmp_path / "repo", {
        "pkg/__init__.py": "", "tests/__init__.py": "", "tests/test_a.py": "",
        "noxfile.py": "import nox\n\n@nox.session\ndef tests(session):\n    session.install('.')\n"
                      "    session.run('python', '-m', 'unittest', 'tests.test_a.TestA.test_one')\n",
    })
    found = ci_test_command(repo, "python")
    assert found.command == ["python", "-m", "pytest", "tests/test_a.py::TestA::test_one"]
    assert found.source == "noxfile.py session tests"
