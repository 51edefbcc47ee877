"""A check run narrowed to some tests: the plan's narrowing, and real pytest runs in bubblewrap."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import CheckStatus, TestSelection, open_sandbox
from sandbox.plans import CheckSpec, Plan
from sandbox.selection import narrow_plan

from .conftest import write_tree

# two test packages, a conftest with a fixture, and a file that would fail to import: only what is
# selected may be collected
PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
    "tests/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef two():\n    return 2\n",
    "tests/test_add.py": "from calc import add\n\n\ndef test_add(two):\n    assert add(two, 1) == 3\n",
    "tests/sub/test_mul.py": "from calc import mul\n\n\ndef test_mul(two):\n    assert mul(two, 3) == 6\n\n\n"
                             "def test_mul_wrong():\n    assert mul(2, 2) == 5\n",
    "tests/broken/test_broken.py": "import no_such_module\n",
}


def test_narrowing_keeps_the_test_checks_it_can_narrow():
    plan = Plan(language="python", checks=[
        CheckSpec(name="lint", command=["ruff", "check", "."]),
        CheckSpec(name="tests", command=["python", "-m", "pytest", "-q"], parser="pytest"),
        CheckSpec(name="tox", command=["tox"], parser="pytest"),
    ])
    narrowed = narrow_plan(plan, TestSelection(paths=["tests/test_a.py"]))
    assert narrowed is not None
    assert [c.name for c in narrowed.checks] == ["tests"]  # lint and tox: in the full run only
    assert narrowed.selected_tests == ["tests/test_a.py"]

    go = Plan(language="go", checks=[CheckSpec(name="vet", command=["go", "vet", "./..."]),
                                     CheckSpec(name="tests", command=["go", "test", "-json", "./..."], parser="go")])
    narrowed = narrow_plan(go, TestSelection(paths=["pkg/a", "./pkg/b"]))
    assert narrowed is not None
    assert [c.command for c in narrowed.checks] == [["go", "test", "-json", "./pkg/a", "./pkg/b"]]


def test_nothing_to_narrow_gives_no_plan():
    plan = Plan(language="javascript", checks=[CheckSpec(name="tests", command=["npm", "test"], parser="node")])
    assert narrow_plan(plan, TestSelection(paths=["a.test.js"])) is None
    with pytest.raises(ValueError):
        TestSelection(paths=[])


@pytest.mark.bwrap
async def test_a_narrowed_run_collects_only_the_selected_files(tmp_path: Path, bwrap_settings):
    repo = write_tree(tmp_path / "repo", PROJECT)
    async with open_sandbox(bwrap_settings, repo) as box:
        full = await box.check(repo)
        only_add = await box.check(repo, selection=TestSelection(paths=["tests/test_add.py"]))
        only_mul = await box.check(repo, selection=TestSelection(paths=["tests/sub/test_mul.py"]))

    assert full.selected_tests is None
    assert full.check("tests").status is CheckStatus.ERROR  # the broken file's collection error

    tests = only_add.check("tests")
    assert only_add.selected_tests == ["tests/test_add.py"]
    assert tests.status is CheckStatus.PASSED, tests.output
    assert tests.tests is not None and tests.tests.passed == 1 and tests.tests.run == 1
    assert [c.name for c in only_add.checks] == ["tests"]
    assert [c.name for c in full.checks] == ["syntax", "lint", "tests"]

    tests = only_mul.check("tests")
    assert tests.tests is not None and (tests.tests.passed, tests.tests.failed) == (1, 1)  # the conftest fixture loaded
    assert [t.test_id for t in tests.failing_tests] == ["tests/sub/test_mul.py::test_mul_wrong"]


def test_cargo_and_npm_test_commands_are_narrowed():
    cargo = Plan(language="rust", checks=[CheckSpec(name="tests", command=["cargo", "test", "--workspace",
                                                                           "--offline"], parser="cargo")])
    narrowed = narrow_plan(cargo, TestSelection(paths=["money", "cart"]))
    assert narrowed.checks[0].command == ["cargo", "test", "-p", "money", "-p", "cart", "--offline"]

    npm = Plan(language="javascript", checks=[CheckSpec(name="tests", command=["npm", "test", "--silent"],
                                                        parser="node")])
    jest = narrow_plan(npm, TestSelection(paths=["src/a.js"], related="jest"))
    assert jest.checks[0].command == ["npm", "test", "--silent", "--", "--findRelatedTests", "src/a.js"]
    vitest = narrow_plan(npm, TestSelection(paths=["src/a.ts"], related="vitest"))
    assert vitest.checks[0].command == ["npm", "test", "--silent", "--", "related", "src/a.ts"]
    assert narrow_plan(npm, TestSelection(paths=["tests/test_a.py"])) is None  # test files: not for npm test


@pytest.mark.bwrap
async def test_a_narrowed_cargo_run_tests_only_the_selected_crates(tmp_path: Path, bwrap_settings):
    crate = '[package]\nname = "{0}"\nversion = "0.1.0"\nedition = "2021"\n'
    test = "#[cfg(test)]\nmod tests {{\n    #[test]\n    fn {0}_works() {{ assert!({1}); }}\n}}\n"
    repo = write_tree(tmp_path / "ws", {
        "Cargo.toml": '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n',
        "a/Cargo.toml": crate.format("a"), "a/src/lib.rs": test.format("a", "true"),
        "b/Cargo.toml": crate.format("b"), "b/src/lib.rs": test.format("b", "false"),
    })
    async with open_sandbox(bwrap_settings, repo) as box:
        report = await box.check(repo, selection=TestSelection(paths=["a"]))
    tests = report.check("tests")
    assert report.selected_tests == ["a"]
    assert tests.status is CheckStatus.PASSED, tests.output  # b's failing test never ran
    assert tests.tests is not None and tests.tests.passed == 1
