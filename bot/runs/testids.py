"""Per-test outcomes (test id -> passed / failed / skipped) from test runners' machine-readable reports,
in every language the real projects use. The same parser reads a run outside any sandbox and one inside,
so the two compare test id by test id (benchmarks/fidelity.py) and a fix's tests can be told apart
before and after it (bot/runs/realinstances.py).

Formats: `junit` (pytest's --junitxml; ids as the sandbox's own check names them), `go` (`go test -json`),
`cargo` (libtest's `test NAME ... ok` lines), `vitest` (vitest's JSON report), `tap` (TAP 13/14 with
subtests: ava --tap, node --test, mocha --reporter tap), `testunit` (test-unit's verbose output),
`uvu` (uvu's per-file lines; uvu names only failing tests, so a file is one id).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Literal

from sandbox.parsers import go_events, junit_test_id

Format = Literal["junit", "go", "cargo", "vitest", "tap", "testunit", "uvu"]
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class ReportError(ValueError):
    """A report that cannot be read (a run killed half-way, the wrong format)."""


def parse(fmt: Format, text: str, root: str = "") -> dict[str, str]:
    """Outcome per test id; `root`: the directory the run ran in, for reports that name files by absolute
    path without saying their root (vitest 3's JSON)."""
    parsers = {"junit": parse_junit, "go": parse_go, "cargo": parse_cargo, "tap": parse_tap,
               "testunit": parse_testunit, "uvu": parse_uvu}
    if fmt == "vitest":
        return parse_vitest(text, root)
    if fmt not in parsers:
        raise ReportError(f"unknown report format {fmt!r}; known: {', '.join([*parsers, 'vitest'])}")
    return parsers[fmt](text)


def parse_junit(text: str) -> dict[str, str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportError(f"JUnit XML does not parse: {exc}") from exc
    statuses = {}
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        status = FAILED if tags & {"failure", "error"} else SKIPPED if "skipped" in tags else PASSED
        test_id = junit_test_id(case)
        if test_id in statuses:  # a test inherited by several classes of one file: the check's id repeats
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        statuses[test_id] = status
    return statuses


def parse_go(text: str) -> dict[str, str]:
    actions = {"pass": PASSED, "fail": FAILED, "skip": SKIPPED}
    return {f"{e.get('Package', '')}.{e['Test']}": actions[e["Action"]] for e in go_events(text)
            if e.get("Test") and e.get("Action") in actions}


_CARGO = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)(?:,.*)?$", re.M)
_CARGO_TARGET = re.compile(r"^\s*(?:Running|Doc-tests) (\S+)", re.M)


def parse_cargo(text: str) -> dict[str, str]:
    """Each test under its target (unit tests, each integration test file, doc tests), as names repeat."""
    statuses = {}
    marks = [(m.start(), m.group(1)) for m in _CARGO_TARGET.finditer(text)]
    for match in _CARGO.finditer(text):
        target = next((name for at, name in reversed(marks) if at < match.start()), "")
        target = re.sub(r"-[0-9a-f]{16}\)?$", "", target.split("/")[-1]).rstrip(")")  # hash of the build
        statuses[f"{target}::{match.group(1)}"] = {"ok": PASSED, "FAILED": FAILED, "ignored": SKIPPED}[match.group(2)]
    return statuses


def parse_vitest(text: str, root: str = "") -> dict[str, str]:
    try:
        report = json.loads(text[text.index("{"):])
    except ValueError as exc:
        raise ReportError(f"vitest's JSON report does not parse: {exc}") from exc
    statuses = {}
    root = report.get("config", {}).get("root") or root
    for suite in report.get("testResults", []):
        path = suite.get("name", "").removeprefix(root).lstrip("/") if root else suite.get("name", "")
        for test in suite.get("assertionResults", []):
            status = test.get("status")
            statuses[f"{path}::{test.get('fullName') or test.get('title')}"] = (
                PASSED if status == "passed" else FAILED if status == "failed" else SKIPPED)
        if suite.get("status") == "failed" and not suite.get("assertionResults"):
            statuses[path] = FAILED  # a file that did not load
    return statuses


_TAP = re.compile(r"^(\s*)(not ok|ok)\b\s*\d*\s*(?:-\s*)?(.*?)(?:\s+#\s*(SKIP|TODO)\b.*)?$", re.I)
_SUBTEST = re.compile(r"^(\s*)# Subtest: (.*)$")


def parse_tap(text: str) -> dict[str, str]:
    """Leaf results only: a node --test suite's own `ok` line sums up its subtests, which are listed."""
    statuses: dict[str, str] = {}
    parents: list[tuple[int, str]] = []  # (indent, name) of open subtests
    for line in text.splitlines():
        if m := _SUBTEST.match(line):
            indent = len(m.group(1))
            parents = [p for p in parents if p[0] < indent] + [(indent, m.group(2).strip())]
            continue
        m = _TAP.match(line)
        if not m:
            continue
        indent, name = len(m.group(1)), m.group(3).strip()
        path = [n for i, n in parents if i < indent] + [name]
        test_id = " > ".join(path)
        if any(other.startswith(test_id + " > ") for other in statuses):
            continue  # a suite's summary line
        status = SKIPPED if m.group(4) else FAILED if m.group(2).lower() == "not ok" else PASSED
        statuses[test_id] = status
        parents = [p for p in parents if p[0] < indent]
    return statuses


_TESTUNIT_CASE = re.compile(r"^\s+(test\S*):\s+([.FEON])(?::\s+\([\d.]+\))?\s*$")
_TESTUNIT_CLASS = re.compile(r"^(\S[\w:]*):\s*$")


def parse_testunit(text: str) -> dict[str, str]:
    statuses, current = {}, ""
    for line in text.splitlines():
        if m := _TESTUNIT_CLASS.match(line):
            current = m.group(1)
        elif m := _TESTUNIT_CASE.match(line):
            statuses[f"{current}#{m.group(1)}"] = {".": PASSED, "O": SKIPPED, "N": SKIPPED}.get(m.group(2), FAILED)
    return statuses


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UVU_FILE = re.compile(r"^(\S+\.[cm]?[jt]sx?)$")
_UVU_COUNT = re.compile(r"\((\d+) / (\d+)\)")


def parse_uvu(text: str) -> dict[str, str]:
    """One id per test file: its name line, then a line of marks ending in `(passed / total)`."""
    statuses, current = {}, None
    for line in _ANSI.sub("", text).splitlines():
        line = line.strip()
        if m := _UVU_FILE.match(line):
            current = m.group(1)
        elif current and (m := _UVU_COUNT.search(line)):
            statuses[current] = PASSED if m.group(1) == m.group(2) and "✘" not in line else FAILED
            current = None
    return statuses
