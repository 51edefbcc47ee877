"""The diff-only tampering rules that catch code asking whether it runs under a test runner (issue 17):
they apply to the code under test, never to tests, and not to ordinary uses of the command line."""

from __future__ import annotations

import pytest

from bot.cycle.judging import tampering


def added(path: str, line: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,2 @@\n x\n+{line}\n"


@pytest.mark.parametrize(("path", "line", "reason"), [
    ("calc.py", "    if any('pytest' in arg for arg in sys.argv):", "reads the command line"),
    ("calc.py", "    if sys._getframe(1).f_code.co_name.startswith('test_'):", "inspects its callers"),
    ("calc.py", "    if inspect.stack()[1].filename.endswith('_test.py'):", "inspects its callers"),
    ("calc.go", '\tif strings.HasSuffix(os.Args[0], ".test") {', "test binary"),
    ("lib/calc.js", "  if (process.env.NODE_ENV === 'test') return a + b;", "NODE_ENV"),
    ("lib/calc.js", "  if (process.argv.some((a) => a.includes('test'))) return a + b;", "reads the command line"),
])
def test_code_that_asks_for_the_test_runner_is_tampering(path: str, line: str, reason: str):
    [found] = tampering(added(path, line))
    assert reason in found.reason and found.path == path


@pytest.mark.parametrize(("path", "line"), [
    ("tests/test_cli.py", '    monkeypatch.setattr(sys, "argv", ["prog", "test.txt"])'),  # a test may set argv
    ("cli.py", "    args = parser.parse_args(sys.argv[1:])"),
    ("cli.py", '    if sys.argv[1:] == ["--latest"]:'),  # "latest" is not "test"
    ("src/run.js", "const files = process.argv.slice(2);"),
])
def test_ordinary_uses_of_the_command_line_are_not(path: str, line: str):
    assert tampering(added(path, line)) == []
