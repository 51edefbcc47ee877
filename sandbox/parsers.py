"""Turning test-runner output into counts and failing tests: pytest's JUnit XML, `go test -json`, and the
summaries of Node test runners (node:test TAP/spec, jest, vitest, mocha)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from sandbox.reports import FailingTest, TestCounts

TRACEBACK_LIMIT = 2000
# colour and cursor sequences (CSI) and OSC hyperlinks, which runners emit when colours are on under CI
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def trim_traceback(text: str, limit: int = TRACEBACK_LIMIT) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    # the end of a traceback (the assertion and the failing line) matters most
    return "[...]\n" + text[-(limit - 6):]


def junit_test_id(case: ET.Element) -> str:
    name = case.get("name", "")
    file = case.get("file")
    classname = case.get("classname", "")
    if file:
        module = file[:-3].replace("/", ".") if file.endswith(".py") else ""
        inner = classname[len(module) + 1 :] if module and classname.startswith(module + ".") else ""
        return "::".join(p for p in (file, *inner.split("."), name) if p)
    if classname and not name:
        return classname
    return f"{classname}::{name}" if classname else name


def parse_junit(xml_text: str | bytes) -> tuple[TestCounts, list[FailingTest]]:
    """Counts and failing tests from a JUnit XML report (pytest writes one with --junitxml)."""
    root = ET.fromstring(xml_text)
    counts = TestCounts()
    failing: list[FailingTest] = []
    for case in root.iter("testcase"):
        problem = next((c for c in case if c.tag in ("failure", "error")), None)
        if problem is not None:
            if problem.tag == "failure":
                counts.failed += 1
            else:
                counts.errors += 1
            message = problem.get("message", "")
            test_id = junit_test_id(case)
            if problem.tag == "error" and message.startswith("collection failure"):
                test_id = case.get("file") or test_id.replace(".", "/") + ".py"
            failing.append(FailingTest(test_id=test_id, message=message, traceback=trim_traceback(problem.text or "")))
        elif any(c.tag == "skipped" for c in case):
            counts.skipped += 1
        else:
            counts.passed += 1
    return counts, failing


_PYTEST_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def parse_pytest_summary(output: str) -> TestCounts | None:
    """Counts from pytest's last summary line, for when no JUnit report was written."""
    for line in reversed(output.splitlines()):
        if re.search(r"\d+ (passed|failed|errors?|skipped)", line) and " in " in line:
            counts = TestCounts()
            for number, kind in _PYTEST_SUMMARY.findall(line):
                n = int(number)
                if kind in ("passed", "xpassed"):
                    counts.passed += n
                elif kind == "failed":
                    counts.failed += n
                elif kind.startswith("error"):
                    counts.errors += n
                else:
                    counts.skipped += n
            return counts
    return None


_GO_BUILD_FAILED = re.compile(r"^FAIL\s+(\S+)\s+\[(?:build|setup) failed\]", re.M)


def go_events(output: str) -> Iterator[dict]:
    """The JSON events of `go test -json` output, passing over the lines that are not one."""
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def parse_go_test_json(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """`go test -json` events: per-test pass/fail/skip, and packages that failed without a test (build
    errors) as errors."""
    counts = TestCounts()
    failing: list[FailingTest] = []
    test_output: dict[tuple[str, str], list[str]] = {}
    package_output: dict[str, list[str]] = {}
    packages_with_tests: set[str] = set()
    seen_event = False
    for event in go_events(output):
        seen_event = True
        package, test, action = event.get("Package", ""), event.get("Test"), event.get("Action")
        if action == "output":
            if test:
                test_output.setdefault((package, test), []).append(event.get("Output", ""))
            else:
                package_output.setdefault(package, []).append(event.get("Output", ""))
            continue
        if test:
            packages_with_tests.add(package)
            if "/" in test:
                continue  # subtests roll up into their parent
            if action == "pass":
                counts.passed += 1
            elif action == "skip":
                counts.skipped += 1
            elif action == "fail":
                counts.failed += 1
                text = "".join(test_output.get((package, test), []))
                failing.append(FailingTest(test_id=f"{package}.{test}", traceback=trim_traceback(text)))
        elif action == "fail" and package not in packages_with_tests:
            counts.errors += 1
            text = "".join(package_output.get(package, [])) or event.get("Output", "")
            failing.append(FailingTest(test_id=package or "build", message="build failed", traceback=trim_traceback(text)))
    # before Go 1.24, build errors never reach the JSON stream: go prints them as text
    broken = _GO_BUILD_FAILED.findall(output)
    if broken and not any(f.message == "build failed" for f in failing):
        text = "\n".join(l for l in output.splitlines() if l.strip() and not l.startswith("{"))
        counts.errors += len(broken)
        failing += [FailingTest(test_id=pkg, message="build failed", traceback=trim_traceback(text)) for pkg in broken]
    if not seen_event and not broken:
        return None, []
    return counts, failing


def go_unfinished_tests(output: str) -> list[str]:
    """Tests that `go test -json` started and never ended (the run was killed while they ran)."""
    running: dict[str, None] = {}
    for event in go_events(output):
        test = event.get("Test")
        if not test or "/" in test:
            continue
        test_id = f"{event.get('Package', '')}.{test}"
        if event.get("Action") == "run":
            running[test_id] = None
        elif event.get("Action") in ("pass", "fail", "skip"):
            running.pop(test_id, None)
    return list(running)


_NODE_SUMMARY = re.compile(r"^(?:#|ℹ)\s+(tests|pass|fail|skipped|todo|cancelled)\s+(\d+)\s*$", re.M)
_JEST = re.compile(r"^Tests:\s+(.*?)\s*(\d+) total", re.M)
_VITEST = re.compile(r"^\s*Tests\s+(.*)\((\d+)\)\s*$", re.M)
_MOCHA = re.compile(r"^\s*(\d+) (passing|failing|pending)\b", re.M)
_AVA = re.compile(r"^\s*(\d+) tests? (passed|failed|skipped|todo)\s*$", re.M)
_AVA_FAIL = re.compile(r"^\s*✘ \[fail\]: (.+?)\s*$", re.M)
_AVA_PASS = re.compile(r"^\s*✔ ", re.M)
_TAP_NOT_OK = re.compile(r"^\s*not ok \d+ - (.+?)\s*$", re.M)
_UVU = re.compile(r"^\s*Total:\s+(\d+)\s*\n\s*Passed:\s+(\d+)\s*\n\s*Skipped:\s+(\d+)", re.M)


def parse_node_output(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts from the summary a Node test runner prints; None when no known summary is found."""
    counts: TestCounts | None = None
    summary = dict((k, int(v)) for k, v in _NODE_SUMMARY.findall(output))
    if "pass" in summary or "fail" in summary:
        counts = TestCounts(passed=summary.get("pass", 0), failed=summary.get("fail", 0) + summary.get("cancelled", 0),
                            skipped=summary.get("skipped", 0) + summary.get("todo", 0))
    elif m := _JEST.search(output):
        counts = _count_words(m.group(1))
    elif m := _VITEST.search(output):
        counts = _count_words(m.group(1).replace("|", ","))
    elif found := _MOCHA.findall(output):
        words = {kind: int(n) for n, kind in found}
        counts = TestCounts(passed=words.get("passing", 0), failed=words.get("failing", 0), skipped=words.get("pending", 0))
    elif found := _AVA.findall(output):
        # ava: "20 tests passed", or after a failure only "1 test failed", "2 tests skipped" (then count the ✔)
        words = {kind: int(n) for n, kind in found}
        passed = words["passed"] if "passed" in words else len(_AVA_PASS.findall(output))
        counts = TestCounts(passed=passed, failed=words.get("failed", 0),
                            skipped=words.get("skipped", 0) + words.get("todo", 0))
        return counts, [FailingTest(test_id=title) for title in _AVA_FAIL.findall(output)]
    elif m := _UVU.search(strip_ansi(output)):  # uvu: "Total: 15", "Passed: 15", "Skipped: 0" (lukeed/kleur)
        total, passed, skipped = (int(n) for n in m.groups())
        counts = TestCounts(passed=passed, failed=total - passed - skipped, skipped=skipped)
    return counts, _tap_failures(output)


def _tap_failures(output: str) -> list[FailingTest]:
    """`not ok N - name` lines of TAP, each with the YAML diagnostics block that follows it."""
    failing: list[FailingTest] = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        match = _TAP_NOT_OK.match(line)
        if not match or "# SKIP" in match.group(1):
            continue
        indent = len(line) - len(line.lstrip())
        block: list[str] = []
        if i + 1 < len(lines) and lines[i + 1].strip() == "---":
            for detail in lines[i + 2 :]:
                if detail.strip() == "..." and len(detail) - len(detail.lstrip()) <= indent + 2:
                    break
                block.append(detail[indent + 2 :])
        text = "\n".join(block)
        failing.append(FailingTest(test_id=match.group(1), message=_tap_error(block), traceback=trim_traceback(text)))
    return failing


def _tap_error(block: list[str]) -> str:
    for i, line in enumerate(block):
        if line.startswith("error:"):
            value = line[len("error:"):].strip()
            if value in ("|", "|-", ">", ">-"):  # a YAML block: its first non-empty line
                value = next((l.strip() for l in block[i + 1 :] if l.strip()), "")
            return value.strip("'\"")
    return ""


def _count_words(text: str) -> TestCounts:
    counts = TestCounts()
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|todo|pending)", text):
        if word == "passed":
            counts.passed += int(number)
        elif word == "failed":
            counts.failed += int(number)
        else:
            counts.skipped += int(number)
    return counts
