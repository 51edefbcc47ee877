"""One classifier for what a path is to the tests (issue 17): policy, context and verdict agree."""

from __future__ import annotations

import pytest

from bot.context import localize
from bot.cycle import baseline, policy
from bot.path_kinds import PathKind, changes_test_settings, classify, is_test_path


@pytest.mark.parametrize(("path", "kind"), [
    ("calc.py", PathKind.SOURCE), ("src/pkg/contest.py", PathKind.SOURCE), ("web/app.ts", PathKind.SOURCE),
    ("tests/test_calc.py", PathKind.TEST), ("pkg/test_b.py", PathKind.TEST), ("pkg/b_test.py", PathKind.TEST),
    ("go/x_test.go", PathKind.TEST), ("web/a.spec.ts", PathKind.TEST), ("src/__tests__/a.js", PathKind.TEST),
    ("test.js", PathKind.TEST), ("test/helpers.js", PathKind.TEST),
    ("tests/data/input.json", PathKind.TEST_DATA), ("pkg/testdata/golden.txt", PathKind.TEST_DATA),
    ("src/__snapshots__/a.test.js.snap", PathKind.TEST_DATA),
    ("conftest.py", PathKind.COLLECTION_HOOK), ("tests/conftest.py", PathKind.COLLECTION_HOOK),
    ("tests/__init__.py", PathKind.COLLECTION_HOOK), ("sitecustomize.py", PathKind.COLLECTION_HOOK),
    ("lib/evil.pth", PathKind.COLLECTION_HOOK), ("jest.setup.js", PathKind.COLLECTION_HOOK),
    ("src/setupTests.ts", PathKind.COLLECTION_HOOK), (".mocharc.yml", PathKind.COLLECTION_HOOK),
    ("pytest.py", PathKind.COLLECTION_HOOK), ("_pytest/python.py", PathKind.COLLECTION_HOOK),
    ("src/_pytest/python.py", PathKind.SOURCE), ("src/pluggy/_hooks.py", PathKind.SOURCE),
    ("pytest.ini", PathKind.TEST_CONFIG), ("pyproject.toml", PathKind.TEST_CONFIG), ("tox.ini", PathKind.TEST_CONFIG),
    ("package.json", PathKind.TEST_CONFIG), ("jest.config.js", PathKind.TEST_CONFIG), ("Makefile", PathKind.TEST_CONFIG),
    ("vitest.config.mts", PathKind.TEST_CONFIG), ("Cargo.toml", PathKind.TEST_CONFIG),
])
def test_every_path_has_one_kind(path: str, kind: PathKind):
    assert classify(path) is kind


def test_the_policy_the_context_and_the_baseline_use_the_one_classifier():
    assert policy.is_test_path is is_test_path
    assert localize.is_test_path is is_test_path
    diff = ("diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
            "diff --git a/tests/conftest.py b/tests/conftest.py\n--- a/tests/conftest.py\n+++ b/tests/conftest.py\n"
            "diff --git a/src/x_test.go b/src/x_test.go\n")
    assert baseline.changed_test_files(diff) == ["src/x_test.go", "tests/conftest.py"]


PYPROJECT = '[project]\nname = "calc"\nversion = "1.0"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'


@pytest.mark.parametrize(("path", "before", "after", "changed"), [
    ("pyproject.toml", PYPROJECT, PYPROJECT.replace('"1.0"', '"1.1"'), False),
    ("pyproject.toml", PYPROJECT, PYPROJECT.replace('"-q"', '"-q -k not add"'), True),
    ("setup.cfg", "[metadata]\nname = a\n[tool:pytest]\naddopts = -q\n",
     "[metadata]\nname = b\n[tool:pytest]\naddopts = -q\n", False),
    ("setup.cfg", "[tool:pytest]\naddopts = -q\n", "[tool:pytest]\naddopts = -q --deselect t.py::x\n", True),
    ("tox.ini", None, "[pytest]\naddopts = -p no:randomly -k 'not add'\n", True),
    ("package.json", '{"version": "1.0.0", "scripts": {"test": "node --test"}}',
     '{"version": "1.0.1", "scripts": {"test": "node --test"}}', False),
    ("package.json", '{"scripts": {"test": "node --test"}}', '{"scripts": {"test": "exit 0"}}', True),
    ("Makefile", "test:\n\tgo test ./...\n", "test:\n\tgo test -run TestMul ./...\n", True),
    ("calc.py", "a", "b", False),
])
def test_only_the_test_part_of_a_mixed_configuration_file_counts(path, before, after, changed):
    assert changes_test_settings(path, before, after) is changed
