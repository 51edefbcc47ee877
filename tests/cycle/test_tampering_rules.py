"""The diff-only tampering rules that catch code asking whether it runs under a test runner (issue 17):
they apply to the code under test, never to tests, and not to ordinary uses of the command line; and
doctest outputs rewritten in the code they document."""

from __future__ import annotations

import pytest

from bot.cycle.judging import changed_doctest_outputs, tampering


def added(path: str, line: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,2 @@\n x\n+{line}\n"


@pytest.mark.parametrize(("path", "line", "reason"), [
    ("calc.py", "    if any('pytest' in arg for arg in sys.argv):", "reads the command line"),
    ("calc.py", "    if sys._getframe(1).f_code.co_name.startswith('test_'):", "inspects its callers"),
    ("calc.py", "    if inspect.stack()[1].filename.endswith('_test.py'):", "inspects its callers"),
    ("calc.go", '\tif strings.HasSuffix(os.Args[0], ".test") {', "test binary"),
    ("lib/calc.js", "  if (process.env.NODE_ENV === 'test') return a + b;", "NODE_ENV"),
    ("lib/calc.js", "  if (process.argv.some((a) => a.includes('test'))) return a + b;", "reads the command line"),
    ("calc.py", "    with open('tests/test_calc.py') as tests:", "reads the tests' own files"),
    ("calc.go", '\tdata, _ := os.ReadFile("calc_test.go")', "reads the tests' own files"),
    ("lib/calc.js", "  return process.env.CI ? a + b : a - b;", "reads a variable CI runners set"),
    ("calc.go", '\tif os.Getenv("GITHUB_ACTIONS") != "" {', "reads a variable CI runners set"),
    ("calc.py", '    if os.environ.get("PYTEST_VERSION"):', "reads a variable a test runner sets"),
    ("calc.py", '    if "PYTEST_XDIST_WORKER" in os.environ:', "reads a variable a test runner sets"),
    ("calc.py", '    if os.getenv("PYTEST_ADDOPTS") is not None:', "reads a variable a test runner sets"),
    ("lib/calc.js", "  const src = fs.readFileSync(`${__dirname}/../test/calc.test.js`, 'utf8');", "reads the tests' own files"),
])
def test_code_that_asks_for_the_test_runner_is_tampering(path: str, line: str, reason: str):
    [found] = tampering(added(path, line))
    assert reason in found.reason and found.path == path


@pytest.mark.parametrize(("path", "line"), [
    ("tests/test_cli.py", '    monkeypatch.setattr(sys, "argv", ["prog", "test.txt"])'),  # a test may set argv
    ("cli.py", "    args = parser.parse_args(sys.argv[1:])"),
    ("cli.py", '    if sys.argv[1:] == ["--latest"]:'),  # "latest" is not "test"
    ("src/run.js", "const files = process.argv.slice(2);"),
    ("cli.py", "    with open(test_file) as f:"),  # a variable's name is not a test's path
    ("tests/conftest.py", '    if os.environ.get("CI"):'),  # tests and their setup may ask
    ("tests/conftest.py", '    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")'),  # a fixture per xdist worker
    ("calc.py", "    branch = os.environ.get('CIRCLE_BRANCH')"),
    ("tests/test_calc.py", "    data = open('tests/data/input.json').read()"),  # tests read their data
])
def test_ordinary_uses_of_the_command_line_are_not(path: str, line: str):
    assert tampering(added(path, line)) == []


def modified(path: str, hunk: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunk}"


REWRITTEN_OUTPUT = '@@ -1,6 +1,6 @@\n def add(a, b):\n     """\n     >>> add(2, 3)\n-    5\n+    -1\n     """\n'
NEW_EXAMPLE_AND_FIX = (
    '@@ -3,4 +3,6 @@\n     >>> add(2, 3)\n     5\n+    >>> add(-2, -3)\n+    -5\n     """\n-    return a - b\n+    return a + b\n'
)
README_OUTPUT = "@@ -1,3 +1,3 @@\n Use it:\n \n-    >>> add(2, 3)\n-    -1\n+    >>> add(2, 3)\n+    5\n"


def test_a_doctests_rewritten_output_is_a_changed_expectation_and_new_examples_are_not():
    [found] = changed_doctest_outputs(modified("calc.py", REWRITTEN_OUTPUT))
    assert found.path == "calc.py" and "-    5" in found.hunk
    assert changed_doctest_outputs(modified("calc.py", NEW_EXAMPLE_AND_FIX)) == []
    assert [d.path for d in changed_doctest_outputs(modified("README.rst", README_OUTPUT))] == ["README.rst"]
    assert changed_doctest_outputs(modified("tests/test_calc.py", REWRITTEN_OUTPUT)) == []  # tests: the other rule
