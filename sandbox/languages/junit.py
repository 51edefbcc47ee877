"""JUnit XML as Java's Surefire and Gradle and PHP's PHPUnit write it: one report file, or several merged
under one <testsuites> root by the check command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sandbox.inventory import junit_case_id
from sandbox.parsers import trim_traceback
from sandbox.reports import FailingTest, TestCounts

REPORT_ENV = "AURA_SICD_REPORT"  # where the check command leaves its report; set by the runner per run


def parse_junit_cases(xml_text: str | bytes, separator: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing tests with ids `Class<separator>method` (Surefire's classname, PHPUnit's class);
    None when the report holds no test."""
    root = ET.fromstring(xml_text)
    counts = TestCounts()
    failing: list[FailingTest] = []
    seen = False
    for case in root.iter("testcase"):
        seen = True
        cls = case.get("class") or case.get("classname") or ""
        test_id = junit_case_id(case, separator)
        problem = next((c for c in case if c.tag in ("failure", "error")), None)
        if problem is not None:
            if problem.tag == "failure":
                counts.failed += 1
            else:
                counts.errors += 1
            # PHPUnit gives no message: its text starts with the test's name, then the message
            lines = [l for l in (problem.text or "").strip().splitlines() if l.strip()]
            message = problem.get("message") or next((l for l in lines if not l.startswith(f"{cls}::")), "")
            failing.append(FailingTest(test_id=test_id, message=message, traceback=trim_traceback(problem.text or "")))
        elif any(c.tag == "skipped" for c in case):
            counts.skipped += 1
        else:
            counts.passed += 1
    return (counts if seen else None), failing
