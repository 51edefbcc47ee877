"""Reports of real pytest runs in both backends: counts, failing tests and the pass rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import CheckStatus, open_sandbox

from .conftest import settings_for, write_tree

PASSING = {"calc.py": "def add(a, b):\n    return a + b\n",
           "tests/test_calc.py": "from calc import add\n\n\ndef test_one():\n    assert add(1, 2) == 3\n\n\ndef test_two():\n    assert add(2, 2) == 4\n"}
FAILING = {**PASSING, "tests/test_more.py": (
    "import pytest\nfrom calc import add\n\n\ndef test_wrong():\n    assert add(1, 1) == 3\n\n\n"
    "class TestGroup:\n    def test_in_class(self):\n        raise ValueError('broken on purpose')\n\n\n"
    "@pytest.mark.skip(reason='later')\ndef test_skipped():\n    pass\n")}
COLLECTION_ERROR = {**PASSING, "tests/test_broken.py": "import not_a_module_anywhere\n\n\ndef test_x():\n    pass\n"}
NO_TESTS = {"calc.py": "def add(a, b):\n    return a + b\n"}
SYNTAX_ERROR = {**PASSING, "calc.py": "def add(a, b:\n    return a + b\n"}


async def _reports(backend: str, tmp_path: Path) -> dict:
    trees = {name: write_tree(tmp_path / name, files) for name, files in
             [("passing", PASSING), ("failing", FAILING), ("collection", COLLECTION_ERROR), ("none", NO_TESTS),
              ("syntax", SYNTAX_ERROR)]}
    async with open_sandbox(settings_for(backend), trees["passing"]) as box:
        return {name: await box.check(path) for name, path in trees.items()}


@pytest.fixture
async def reports(backend, tmp_path):
    return await _reports(backend, tmp_path)


async def test_real_pytest_reports(reports, backend):
    passing = reports["passing"]
    assert passing.backend == backend
    assert [c.name for c in passing.checks] == ["syntax", "lint", "tests"]
    assert passing.all_green
    assert passing.check("tests").tests.model_dump() == {"passed": 2, "failed": 0, "errors": 0, "skipped": 0}
    assert passing.pass_rate == 1.0 and passing.pass_rate_reason == "2 of 2 tests passed"

    failing = reports["failing"]
    tests = failing.check("tests")
    assert tests.status == CheckStatus.FAILED and tests.exit_code == 1
    assert tests.tests.model_dump() == {"passed": 2, "failed": 2, "errors": 0, "skipped": 1}
    ids = [f.test_id for f in tests.failing_tests]
    assert ids == ["tests/test_more.py::test_wrong", "tests/test_more.py::TestGroup::test_in_class"]
    assert "assert 2 == 3" in tests.failing_tests[0].traceback
    assert "broken on purpose" in tests.failing_tests[1].message
    assert failing.pass_rate == 0.5 and failing.pass_rate_reason == "2 of 4 tests passed"
    assert not failing.all_green
    summary = failing.summary()
    assert "tests FAILED" in summary and "tests/test_more.py::test_wrong" in summary and "assert 2 == 3" in summary

    collection = reports["collection"]
    assert collection.check("tests").status == CheckStatus.ERROR
    assert collection.pass_rate == 0.0
    assert collection.pass_rate_reason == "collection error in tests/test_broken.py"
    assert "not_a_module_anywhere" in collection.check("tests").failing_tests[0].traceback

    none = reports["none"]
    assert none.pass_rate == 0.0 and none.pass_rate_reason == "no tests ran"
    assert none.check("tests").tests.run == 0

    syntax = reports["syntax"]
    assert syntax.check("syntax").status == CheckStatus.FAILED
    assert syntax.check("lint").status == CheckStatus.FAILED
    assert syntax.pass_rate == 0.0 and syntax.pass_rate_reason.startswith("syntax error: calc.py:1")
