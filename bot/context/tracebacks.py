"""What failed checks point at: files and lines from failing tests and tracebacks, and a summary text."""

from __future__ import annotations

import re

from bot.context.index import RepoIndex
from sandbox.reports import CheckReport

PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
PATH_LINE = re.compile(r"(?:^|[\s(\[\"'])((?:[\w.\-]+/|/)*[\w.\-]+\.[A-Za-z0-9]+):(\d+)\b", re.MULTILINE)
MAX_FAILURE_FILES = 6
MAX_FAILING_TESTS_SHOWN = 8
TRACEBACK_LINES_SHOWN = 25


def failure_locations(index: RepoIndex, report: CheckReport | None) -> dict[str, list[int]]:
    """Indexed files named by failing tests and tracebacks, each with the lines involved (innermost first)."""
    found: dict[str, list[int]] = {}
    if report is None:
        return found

    def add(raw: str, line: int | None) -> None:
        path = index.resolve_mention(raw)
        if path is None:
            return
        lines = found.setdefault(path, [])
        if line and line not in lines:
            lines.insert(0, line)

    for check in report.failed_checks:
        for test in check.failing_tests:
            test_file, _, test_name = test.test_id.partition("::")
            if (path := index.resolve_mention(test_file)) is not None:
                function = test_name.split("::")[-1].split("[")[0]
                defined = [n for n, line in enumerate(index.lines(path), start=1)
                           if re.match(rf"\s*(?:async\s+)?def {re.escape(function)}\b", line)] if function else []
                add(path, defined[0] if defined else None)
            for text in (test.traceback, test.message):
                for match in PY_FRAME.finditer(text):
                    add(match.group(1), int(match.group(2)))
                for match in PATH_LINE.finditer(text):
                    add(match.group(1), int(match.group(2)))
        if not check.failing_tests:
            for match in PATH_LINE.finditer(check.output):
                add(match.group(1), int(match.group(2)))
            for match in PY_FRAME.finditer(check.output):
                add(match.group(1), int(match.group(2)))
    return dict(list(found.items())[:MAX_FAILURE_FILES])


def report_text(report: CheckReport) -> str:
    """The report's own summary() when it has one, else a compact account of what failed."""
    summary = getattr(report, "summary", None)
    if callable(summary):
        return str(summary())
    out = [f"Pass rate {report.pass_rate:.0%}" + (f" ({report.pass_rate_reason})" if report.pass_rate_reason else "")
           + "."]
    for check in report.checks:
        counts = ""
        if check.tests is not None:
            t = check.tests
            counts = f": {t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped"
        exit_code = f", exit {check.exit_code}" if check.exit_code is not None else ""
        optional = "" if check.required else " (optional)"
        out.append(f"- {check.name}{optional}: {check.status.value}{exit_code}{counts}")
        if check not in report.failed_checks:
            continue
        for test in check.failing_tests[:MAX_FAILING_TESTS_SHOWN]:
            out.append(f"  FAILED {test.test_id}" + (f": {test.message}" if test.message else ""))
            if test.traceback:
                tb = test.traceback.strip().splitlines()[-TRACEBACK_LINES_SHOWN:]
                out.extend(f"    {line}" for line in tb)
        if len(check.failing_tests) > MAX_FAILING_TESTS_SHOWN:
            out.append(f"  ... and {len(check.failing_tests) - MAX_FAILING_TESTS_SHOWN} more failing tests")
        if not check.failing_tests and check.output.strip():
            tail = check.output.strip().splitlines()[-TRACEBACK_LINES_SHOWN:]
            out.extend(f"    {line}" for line in tail)
    return "\n".join(out)
