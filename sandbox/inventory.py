"""The test inventory of one check run: every test the runner reported, by id, with what became of it.

Counts say how many tests passed; the inventory says which, and what happened to the others — collected
but never run, skipped, expected to fail, deselected. That is what shows a change that makes a test go
away instead of making it pass (bot/cycle/inventory.py compares two inventories).

Sources, best first: pytest through the `aura_sicd_inventory` plugin (collection, deselection and every
report), pytest's JUnit XML, `go test -json` events (subtests included), TAP (node's test runner), the
JUnit reports of Surefire, Gradle and PHPUnit, and RSpec's JSON report. Jest, vitest, mocha and minitest
print only counts and failures in their default reporters: no inventory for them.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from enum import StrEnum

from pydantic import BaseModel, Field


class Outcome(StrEnum):
    COLLECTED = "collected"  # collected, and never reported as run (the run stopped, or it was not reached)
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # an error in setup or teardown, or a file that could not be collected
    SKIPPED = "skipped"
    XFAILED = "xfailed"  # expected to fail, and failed
    XPASSED = "xpassed"  # expected to fail, and passed
    DESELECTED = "deselected"  # collected, then left out by -k, -m, --deselect or a hook


RAN = frozenset({Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.XPASSED})
WORST_FIRST = [Outcome.ERROR, Outcome.FAILED, Outcome.XPASSED, Outcome.XFAILED, Outcome.SKIPPED, Outcome.PASSED,
               Outcome.COLLECTED, Outcome.DESELECTED]


class TestInventory(BaseModel):
    """Test id -> outcome, as one runner reported them; `source` names the report it came from."""

    __test__ = False  # not a pytest class

    source: str
    tests: dict[str, Outcome] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)  # why a test was skipped or xfailed, when said

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.tests.values() if o is outcome)

    @property
    def ran(self) -> list[str]:
        return [t for t, o in self.tests.items() if o in RAN]

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o.value}" for o in Outcome if self.count(o)]
        return f"{len(self.tests)} tests ({', '.join(parts) or 'none'}) from {self.source}"


def _settle(tests: dict[str, Outcome], test_id: str, outcome: Outcome) -> None:
    """Keep the worst of what the phases of one test reported (a passing call with a failing teardown fails)."""
    now = tests.get(test_id)
    if now is None or now in (Outcome.COLLECTED, Outcome.DESELECTED) or WORST_FIRST.index(outcome) < WORST_FIRST.index(now):
        tests[test_id] = outcome


# --- pytest ------------------------------------------------------------------------------------------------


def from_pytest_plugin(text: str | bytes) -> TestInventory | None:
    """The JSON lines `aura_sicd_inventory` wrote: {"collected": [...]}, {"deselected": [...]}, and one
    {"id", "when", "outcome", "xfail", "reason"} per report."""
    inventory = TestInventory(source="pytest (collection and reports)")
    seen = False
    for line in (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a run that was killed
        if not isinstance(event, dict):
            continue
        seen = True
        for test_id in event.get("collected", []):
            inventory.tests.setdefault(test_id, Outcome.COLLECTED)
        for test_id in event.get("deselected", []):
            inventory.tests[test_id] = Outcome.DESELECTED
        if "id" in event:
            outcome = _pytest_outcome(event)
            if outcome is not None:
                _settle(inventory.tests, event["id"], outcome)
                if outcome in (Outcome.SKIPPED, Outcome.XFAILED) and event.get("reason"):
                    inventory.reasons[event["id"]] = str(event["reason"])[:300]
    return inventory if seen else None


def _pytest_outcome(event: dict) -> Outcome | None:
    outcome, when, xfail = event.get("outcome"), event.get("when"), event.get("xfail", False)
    if outcome == "skipped":
        return Outcome.XFAILED if xfail else Outcome.SKIPPED
    if outcome == "failed":
        return Outcome.FAILED if when == "call" else Outcome.ERROR
    if outcome == "passed":
        if xfail:
            return Outcome.XPASSED
        return Outcome.PASSED if when == "call" else None  # setup and teardown passing say nothing yet
    return None


def from_junit(xml_text: str | bytes, test_id) -> TestInventory:
    """From a JUnit XML report (pytest's, xunit1); `test_id` names a testcase as the failing tests are named."""
    inventory = TestInventory(source="JUnit report")
    for case in ET.fromstring(xml_text).iter("testcase"):
        tid = test_id(case)
        children = {c.tag: c for c in case}
        if "failure" in children:
            outcome = Outcome.FAILED
        elif "error" in children:
            outcome = Outcome.ERROR
        elif "skipped" in children:
            skipped = children["skipped"]
            outcome = Outcome.XFAILED if skipped.get("type") == "pytest.xfail" else Outcome.SKIPPED
            if skipped.get("message"):
                inventory.reasons[tid] = skipped.get("message", "")[:300]
        else:
            outcome = Outcome.PASSED
        _settle(inventory.tests, tid, outcome)
    return inventory


def junit_case_id(case: ET.Element, separator: str) -> str:
    """`Class<separator>method` as Surefire (`#`) and PHPUnit (`::`) name a testcase; PHPUnit's classname has
    dots for backslashes, its `class` the real name."""
    cls = case.get("class") or case.get("classname") or ""
    return f"{cls}{separator}{case.get('name', '')}" if cls else case.get("name", "")


def from_junit_cases(report: bytes | None, separator: str, source: str) -> TestInventory | None:
    """From the merged JUnit reports of Surefire, Gradle or PHPUnit; None without a testcase in them."""
    if not report or b"<testcase" not in report:
        return None
    try:
        inventory = from_junit(report, lambda case: junit_case_id(case, separator))
    except ET.ParseError:  # a half-written report (killed mid-run)
        return None
    return inventory.model_copy(update={"source": source})


def from_rspec_json(report: bytes | None) -> TestInventory | None:
    """`path::full description` per example, from RSpec's JSON formatter; pending examples count as skipped."""
    try:
        data = json.loads(report) if report else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        return None
    inventory = TestInventory(source="RSpec JSON report")
    for example in data["examples"]:
        tid = f"{str(example.get('file_path', '')).removeprefix('./')}::{example.get('full_description', '')}"
        status = example.get("status")
        outcome = {"passed": Outcome.PASSED, "pending": Outcome.SKIPPED}.get(status, Outcome.FAILED)
        if status == "pending" and example.get("pending_message"):
            inventory.reasons[tid] = str(example["pending_message"])[:300]
        _settle(inventory.tests, tid, outcome)
    return inventory


# --- Go ----------------------------------------------------------------------------------------------------

_GO_ACTIONS = {"pass": Outcome.PASSED, "fail": Outcome.FAILED, "skip": Outcome.SKIPPED}


def from_go_events(events) -> TestInventory | None:
    """`package.TestName` (and `package.TestName/subtest`) from `go test -json` events."""
    inventory = TestInventory(source="go test -json")
    seen = False
    for event in events:
        seen = True
        test, action = event.get("Test"), event.get("Action")
        if not test:
            continue
        test_id = f"{event.get('Package', '')}.{test}"
        if action == "run":
            inventory.tests.setdefault(test_id, Outcome.COLLECTED)
        elif action in _GO_ACTIONS:
            inventory.tests[test_id] = _GO_ACTIONS[action]
    return inventory if seen else None


# --- TAP (node --test, tap, tape) --------------------------------------------------------------------------

_TAP_LINE = re.compile(r"^(?P<indent>\s*)(?P<ok>not ok|ok) \d+(?: - (?P<name>.*?))?\s*$")
_TAP_DIRECTIVE = re.compile(r"\s+#\s*(?P<kind>SKIP|TODO)\b(?P<reason>.*)$", re.IGNORECASE)
_TAP_SUBTEST = re.compile(r"^\s*# Subtest: (.+?)\s*$")


def from_tap(output: str) -> TestInventory | None:
    """Every `ok`/`not ok` line of TAP, nested subtests named `parent > child`."""
    inventory = TestInventory(source="TAP")
    stack: list[tuple[int, str]] = []  # (indent, name) of the subtests that enclose the next result
    for line in output.splitlines():
        if sub := _TAP_SUBTEST.match(line):
            indent = len(line) - len(line.lstrip())
            stack = [(i, n) for i, n in stack if i < indent] + [(indent, sub.group(1))]
            continue
        match = _TAP_LINE.match(line)
        if not match or match.group("name") is None:
            continue
        indent, name = len(match.group("indent")), match.group("name")
        outcome = Outcome.PASSED if match.group("ok") == "ok" else Outcome.FAILED
        reason = ""
        if directive := _TAP_DIRECTIVE.search(name):
            name, reason = name[: directive.start()], directive.group("reason").strip()
            outcome = Outcome.SKIPPED if directive.group("kind").upper() == "SKIP" else Outcome.XFAILED
        stack = [(i, n) for i, n in stack if i < indent]
        test_id = " > ".join([*(n for _, n in stack), name.strip()])
        _settle(inventory.tests, test_id, outcome)
        if reason:
            inventory.reasons[test_id] = reason[:300]
    return inventory if inventory.tests else None
