"""The verdict's records: what the checks of an attempt found, as data.

`IterationRecord` (bot/records.py) carries them and the PR's text (bot/pr_body.py) shows them; the logic
that builds them is in bot/cycle/: `compare` (baseline.py) makes a `Comparison`, `judge_attempt`
(judging.py) a `Judgment`, `select_tests` (impact.py) a `Selection` and `gated_check` (gate.py) a
`TestImpact`. Those modules import these names, so a recorded DBOS step output that names a class by
its old module (`bot.cycle.judging.Judgment`) still loads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bot.path_kinds import PathKind
from sandbox.reports import CheckReport
from sandbox.selection import TestSelection

Status = Literal["added", "modified", "deleted"]  # what the attempt did to a path
JudgedAs = Literal["base", "removed", "attempt"]


# --- the attempt against the base (bot/cycle/baseline.py) -----------------------------------------------

class Comparison(BaseModel):
    """An attempt's check report against the base's (bot/cycle/baseline.py `compare`)."""

    new_failures: list[str] = Field(default_factory=list)  # fail now, did not fail at base
    still_failing_related: list[str] = Field(default_factory=list)  # the task is about them, and they still fail
    fixed: list[str] = Field(default_factory=list)  # failed at base, pass now
    unchanged: list[str] = Field(default_factory=list)  # failing on main and unchanged: tests and checks
    worse_checks: dict[str, str] = Field(default_factory=dict)  # check -> why it is worse than at base
    reproduced: list[str] = Field(default_factory=list)  # tests the change adds or edits: fail on base, pass now
    dodges: list[str] = Field(default_factory=list)  # how the change weakens the tests that judge it (judging.py)

    @property
    def blocking(self) -> bool:
        return bool(self.new_failures or self.still_failing_related or self.worse_checks or self.dodges)


# --- the attempt's tests judged (bot/cycle/judging.py) -------------------------------------------------

class TestChange(BaseModel):
    """A path the attempt touched that is not source, and how the judging run has it."""

    __test__ = False

    path: str
    kind: PathKind
    status: Status
    judged_as: JudgedAs  # base: restored as the base had it; removed: left out; attempt: as the attempt has it
    asked: bool = False  # the task asks for this change: kept, and shown

    def describe(self) -> str:
        how = {"base": "judged as the base had it", "removed": "left out of the judging run",
               "attempt": "kept as changed (the task asks for it)"}[self.judged_as]
        return f"`{self.path}` ({self.kind.value}, {self.status}; {how})"


class ChangedExpectation(BaseModel):
    path: str
    hunk: str  # the diff hunk, trimmed


class Tampering(BaseModel):
    path: str
    line: str
    reason: str

    def __str__(self) -> str:
        return f"`{self.path}`: {self.reason} (`{self.line.strip()[:120]}`)"


class Judgment(BaseModel):
    """What the verdict found about the attempt's tests; `blockers` are the reasons it is refused."""

    test_changes: list[TestChange] = Field(default_factory=list)
    expectations: list[ChangedExpectation] = Field(default_factory=list)
    tampering: list[Tampering] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    judging_report: CheckReport | None = None  # the checks with the tests as the base had them

    @property
    def restores(self) -> bool:
        return any(c.judged_as != "attempt" for c in self.test_changes)


# --- what ran first, and why (bot/cycle/impact.py, bot/cycle/gate.py) ----------------------------------

class SelectedTest(BaseModel):
    path: str  # a test file (Python), a package (Go, `./dir`), a crate (Rust), a changed file (jest, vitest)
    reasons: list[str]


class Selection(BaseModel):
    """The tests chosen for an attempt, or why the full suite runs at once."""

    tests: list[SelectedTest] = Field(default_factory=list)
    out_of: int = 0  # the project's test files (Python), packages with tests (Go), crates (Rust)
    full_suite_only: str | None = None  # why there is no selection
    related: Literal["jest", "vitest"] | None = None  # `tests` are changed files; the runner finds their tests

    @property
    def paths(self) -> list[str]:
        return [t.path for t in self.tests]

    def for_sandbox(self) -> TestSelection | None:
        if not self.tests or self.full_suite_only is not None:
            return None
        return TestSelection(paths=self.paths, related=self.related)

    def summary(self) -> str:
        if self.full_suite_only:
            return f"the full suite at once: {self.full_suite_only}"
        what = "changed files, whose related tests the runner finds," if self.related else f"of {self.out_of}"
        lines = [f"{len(self.tests)} {what} first:"]
        lines += [f"- {t.path}: {'; '.join(t.reasons)}" for t in self.tests[:30]]
        if len(self.tests) > 30:
            lines.append(f"- ... {len(self.tests) - 30} more")
        return "\n".join(lines)


class TestImpact(BaseModel):
    """What ran for an attempt's check and why: for the iteration's record and the report."""

    __test__ = False  # not a pytest class

    selection: Selection
    selected_run_s: float | None = None  # the selected tests
    selected_tests_run: int | None = None
    stopped_after_selection: bool = False  # the selection failed: the full suite did not run
    full_run_s: float | None = None
    note: str = ""

    @property
    def check_s(self) -> float:
        return (self.selected_run_s or 0.0) + (self.full_run_s or 0.0)

    def summary(self) -> str:
        parts = [self.selection.summary()]
        if self.selected_run_s is not None:
            parts.append(f"Selected run: {self.selected_tests_run} tests in {self.selected_run_s:.1f} s")
        if self.stopped_after_selection:
            parts.append("The selected tests failed: the full suite did not run.")
        elif self.full_run_s is not None:
            parts.append(f"Full suite: {self.full_run_s:.1f} s")
        if self.note:
            parts.append(self.note)
        return "\n".join(parts)
