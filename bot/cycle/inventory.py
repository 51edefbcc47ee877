"""Tests that stopped running: an attempt's test inventory against the base's (sandbox/inventory.py).

A change can make a failing test go away instead of making it pass: delete it, skip it, mark it xfail,
deselect it, drop a parametrized case, stop its file from being collected, end the run before it. Each
is a regression with its reason named: a test that ran on the base (passed, failed or errored) and now

- is missing, with its whole file ("its file no longer yields tests") or alone ("no longer collected");
- is skipped, xfailed or deselected ("newly skipped", "newly marked xfail", "deselected");
- was collected and never reported ("collected but never run: the run ended before it");
- is one of fewer cases of a parametrized test ("a parametrized case is gone").

Tests the task asks to change (`task_asks_to_change`) are exempt; so are tests that did not run on the base.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from bot.cycle.baseline import relates_to_task
from sandbox.inventory import RAN, Outcome, TestInventory

MAX_SHOWN = 8
_ASKS = re.compile(
    r"\b(remove|delete|drop|skip|xfail|disable|deprecate|rename|update|change|adjust|rewrite|replace|fix|correct)\w*\b"
    r"[^.\n]{0,80}\btests?\b|\btests?\b[^.\n]{0,80}\b(wrong|outdated|obsolete|incorrect|stale|flaky|broken)\b",
    re.IGNORECASE,
)


class Regression(BaseModel):
    test_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.test_id} ({self.reason})"


def task_asks_to_change(test_id_or_path: str, task_text: str) -> bool:
    """Whether the task itself asks for this test (or test file) to change: it names it, and asks for a
    test to be removed, skipped, updated or fixed."""
    name = _last_name(test_id_or_path)
    named = relates_to_task(test_id_or_path, task_text) or (
        len(name) > 3 and re.search(rf"\b{re.escape(name)}\b", task_text) is not None)
    return named and _ASKS.search(task_text) is not None


def _last_name(test_id: str) -> str:
    """`test_x` of `t/test_a.py::test_x[1]`, `test_a` of `t/test_a.py`, `TestAdd` of Go's `pkg/calc.TestAdd`."""
    base = test_id.split("[")[0]
    if "::" in base:
        return base.rsplit("::", 1)[-1]
    if re.search(r"\.(py|go|[cm]?[jt]sx?|rb|rs|java|kt|php)$", base):
        return base.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.split(r"[./#]", base)[-1]


def file_of(test_id: str) -> str:
    """The file part of a test id (pytest `path::name`, Go `package.Test`, TAP has none: the id itself)."""
    if "::" in test_id:
        return test_id.split("::")[0]
    if "/" in test_id and "." in test_id.rsplit("/", 1)[-1]:
        return test_id.rsplit(".", 1)[0]  # a Go package
    return test_id


def _case_base(test_id: str) -> str | None:
    return test_id.split("[", 1)[0] if test_id.endswith("]") and "[" in test_id else None


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_id(test_id: str) -> str:
    """A test id without the memory addresses pytest puts in the ids of object parameters (`<Obj at 0x7f..>`)."""
    return _ADDRESS.sub(" at 0x?", test_id)


def regressions(base: TestInventory | None, now: TestInventory | None, task_text: str = "") -> list[Regression]:
    """What ran on the base and does not run now, each with its reason; ids compared without addresses."""
    if base is None:
        return []
    if now is not None:
        now = now.model_copy(update={"tests": {stable_id(t): o for t, o in now.tests.items()},
                                     "reasons": {stable_id(t): r for t, r in now.reasons.items()}})
    base = base.model_copy(update={"tests": {stable_id(t): o for t, o in base.tests.items()}})
    now_tests = now.tests if now is not None else {}
    files_now = {file_of(t) for t in now_tests}
    cases_now: dict[str, int] = {}
    for test_id in now_tests:
        if (stem := _case_base(test_id)) is not None:
            cases_now[stem] = cases_now.get(stem, 0) + 1
    found: list[Regression] = []
    for test_id, before in base.tests.items():
        if before not in RAN or task_asks_to_change(test_id, task_text):
            continue
        after = now_tests.get(test_id)
        reason = _reason(test_id, before, after, now, files_now, cases_now)
        if reason:
            found.append(Regression(test_id=test_id, reason=reason))
    return found


def _reason(test_id: str, before: Outcome, after: Outcome | None, now: TestInventory | None, files_now: set[str],
            cases_now: dict[str, int]) -> str | None:
    if after in RAN:
        return None
    if after is Outcome.SKIPPED:
        why = now.reasons.get(test_id, "") if now else ""
        return "newly skipped" + (f": {why}" if why else "")
    if after is Outcome.XFAILED:
        return "newly marked xfail, so its failure no longer counts"
    if after is Outcome.DESELECTED:
        return "deselected"
    if after is Outcome.COLLECTED:
        return "collected but never run: the run ended before it"
    if now is None:
        return "no test reported at all: the run ended early or its report is gone"
    if (stem := _case_base(test_id)) is not None and cases_now.get(stem):
        return "a case of this parametrized test is gone"
    if file_of(test_id) not in files_now:
        return "its file no longer yields tests (deleted, renamed or no longer collected)"
    return "no longer collected (removed or renamed)"


def describe(found: list[Regression], limit: int = MAX_SHOWN) -> str:
    shown = "; ".join(str(r) for r in found[:limit])
    return shown + (f"; and {len(found) - limit} more" if len(found) > limit else "")
