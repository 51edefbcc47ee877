"""Small real repositories with one failing test and one passing test, in Python (pytest and unittest), Go
and JavaScript (node's test runner), for the catalogue of test dodges (tests/cycle/test_dodges.py)."""

from __future__ import annotations

from bot.records import Task

CALC_PY = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n'
PYTEST_TEST = "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
PYTEST_REPO = {"calc.py": CALC_PY, "tests/test_calc.py": PYTEST_TEST, "README.md": "# calc\n"}
PYTHON_TASK = Task(title="add() returns the wrong result", body="add(2, 3) should be 5; test_add fails.", repo="calc")

PARAM_TEST = (
    "import pytest\n\nfrom calc import add\n\n\n@pytest.mark.parametrize(('a', 'b', 'want'), [(2, 3, 5), (0, 0, 0)])\n"
    "def test_add(a, b, want):\n    assert add(a, b) == want\n"
)
PARAM_REPO = {"calc.py": CALC_PY, "tests/test_calc.py": PARAM_TEST, "README.md": "# calc\n"}

DOCTEST_CALC = (
    'def add(a, b):\n    """Return the sum of a and b.\n\n    >>> add(2, 3)\n    5\n    """\n    return a - b\n\n\n'
    "def mul(a, b):\n    return a * b\n"
)
DOCTEST_REPO = {"calc.py": DOCTEST_CALC, "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
                "tests/test_calc.py": "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
                "README.md": "# calc\n"}
DOCTEST_TASK = Task(title="add() returns the wrong result", body="add(2, 3) should be 5; the doctest of add fails.",
                    repo="calc")

UNITTEST_TEST = (
    "import unittest\n\nfrom calc import add, mul\n\n\nclass CalcTest(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
    "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n"
)
UNITTEST_REPO = {"calc.py": CALC_PY, "tests/test_calc.py": UNITTEST_TEST, "README.md": "# calc\n"}

GO_CALC = "package calc\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n\nfunc Mul(a, b int) int {\n\treturn a * b\n}\n"
GO_TEST = (
    'package calc\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(2, 3); got != 5 {\n'
    '\t\tt.Errorf("Add(2, 3) = %d, want 5", got)\n\t}\n}\n\nfunc TestMul(t *testing.T) {\n'
    '\tif got := Mul(2, 3); got != 6 {\n\t\tt.Errorf("Mul(2, 3) = %d, want 6", got)\n\t}\n}\n'
)
GO_REPO = {"go.mod": "module example.com/calc\n\ngo 1.19\n", "calc.go": GO_CALC, "calc_test.go": GO_TEST}
GO_TASK = Task(title="Add returns the wrong result", body="Add(2, 3) should be 5; TestAdd fails.", repo="calc")

JS_CALC = "exports.add = (a, b) => a - b;\nexports.mul = (a, b) => a * b;\n"
JS_TEST = (
    "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add, mul } = require('../calc');\n\n"
    "test('add', () => {\n  assert.strictEqual(add(2, 3), 5);\n});\n\n"
    "test('mul', () => {\n  assert.strictEqual(mul(2, 3), 6);\n});\n"
)
JS_PACKAGE = '{\n  "name": "calc",\n  "version": "1.0.0",\n  "scripts": {\n    "test": "node --test test/"\n  }\n}\n'
JS_REPO = {"package.json": JS_PACKAGE, "calc.js": JS_CALC, "test/calc.test.js": JS_TEST}
JS_TASK = Task(title="add returns the wrong result", body="add(2, 3) should be 5; the add test fails.", repo="calc")


def update(path: str, search: str, replace: str) -> dict:
    return {"file_path": path, "change_type": "update", "edits": [{"search": search, "replace": replace}],
            "new_content": None, "rationale": "make the tests pass"}


def create(path: str, content: str) -> dict:
    return {"file_path": path, "change_type": "create", "edits": [], "new_content": content,
            "rationale": "make the tests pass"}


def delete(path: str) -> dict:
    return {"file_path": path, "change_type": "delete", "edits": [], "new_content": None,
            "rationale": "the test is obsolete"}


def proposal(*changes: dict, summary: str = "make the tests pass") -> dict:
    return {"summary": summary, "changes": list(changes)}
