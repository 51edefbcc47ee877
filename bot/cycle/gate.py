"""An attempt's check: its selected tests first, then the full suite as the gate.

The selected tests (bot/cycle/impact.py) run first, alone: the checks that look at the whole project
(syntax, lint, types) wait for the full run. Judged against the baseline by the same rules as a full run
(bot/cycle/baseline.py `compare`), an attempt that fails there is rejected on that report and never pays
for the full suite. One that passes is checked with the full suite, and that report is the one the
verdict reads: a selection approves nothing.
Without a selection, without a baseline to judge one by, or on a small suite, the full suite runs at
once, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from bot.cycle.baseline import Baseline, compare
from bot.verdict_records import Selection, TestImpact
from sandbox.reports import CheckReport
from sandbox.selection import TestSelection

NO_TESTS_COLLECTED = 5  # pytest's exit code


class SelectingBox(Protocol):
    async def check(self, workdir: Path, *, selection: TestSelection | None = None) -> CheckReport: ...


class GatedCheck(BaseModel):
    report: CheckReport  # the report the verdict reads: the full suite's, or the failed selection's
    impact: TestImpact


def count_tests_run(report: CheckReport) -> int:
    return sum(c.tests.run for c in report.checks if c.tests is not None)


def _judgeable(report: CheckReport) -> CheckReport:
    """The selected run without test checks that collected nothing (pytest's exit 5): a selection of a
    module without doctests, say, is no failure."""
    checks = [c for c in report.checks
              if not (c.tests is not None and c.tests.run == 0 and c.exit_code == NO_TESTS_COLLECTED)]
    return report.model_copy(update={"checks": checks})


async def gated_check(box: SelectingBox, workdir: Path, selection: Selection, baseline: Baseline | None,
                      task_text: str, *, min_suite_s: float = 0.0) -> GatedCheck:
    """The attempt in `workdir` checked as the module's docstring says; with a selection only when the
    base's full check took at least `min_suite_s` (a small suite gains nothing from a run before it)."""
    impact = TestImpact(selection=selection)
    narrowed = selection.for_sandbox()
    if narrowed is not None and baseline is None:
        narrowed, impact.note = None, "No baseline to judge a selection by: the full suite at once."
    elif narrowed is not None and baseline is not None and 0 < baseline.duration_s < min_suite_s:
        impact.note = f"The full check takes {baseline.duration_s:.0f} s on the base: no selection first."
        narrowed = None
    if narrowed is not None and baseline is not None:
        first = await box.check(workdir, selection=narrowed)
        if first.selected_tests is None:  # the sandbox could not narrow its test command: a full run
            impact.full_run_s = first.duration_s
            impact.note = "The sandbox cannot narrow this project's test command: the full suite ran."
            return GatedCheck(report=first, impact=impact)
        impact.selected_run_s, impact.selected_tests_run = first.duration_s, count_tests_run(first)
        if compare(baseline, _judgeable(first), task_text).blocking:
            impact.stopped_after_selection = True
            return GatedCheck(report=first, impact=impact)
    full = await box.check(workdir)
    impact.full_run_s = full.duration_s
    return GatedCheck(report=full, impact=impact)

