"""The baseline: the repository's checks on the unmodified base, so an attempt is judged by what it changes.

Real projects carry debt on main: lint and type findings, a test that fails in the sandbox for reasons
of its own. Judged alone, every attempt on such a project is blocked forever. Judged against the
baseline, an attempt is blocked only by what it makes worse:

- a test that fails now and did not fail at base (a regression, or a new test that fails);
- a test that failed at base, still fails, and is what the task is about (its name or file is named
  in the task): the fix has not fixed it;
- a check that was green at base and is red now;
- a finding (lint, type) that was not there at base, compared without line numbers, since a change
  moves the lines below it; or more findings than at base, by the tool's own count.

What was already failing on main and is unchanged is named, never hidden (`Comparison.unchanged`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from bot.config import Settings
from bot.path_kinds import is_test_path
from bot.verdict_records import Comparison
from sandbox.inventory import TestInventory
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest

GREEN = (CheckStatus.PASSED, CheckStatus.SKIPPED)
MAX_FAILURES = 10  # failures kept per check, with their tracebacks, for the first prompt
FAILURE_CHARS = 1500
_DIFF_PATH = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)
# path.ext:line[:col]: message — ruff (concise), mypy, flake8, pyright (plain), go vet, tsc (plain), eslint (unix)
FINDING_LINE = re.compile(r"^(?P<path>[^\s:]+\.[A-Za-z0-9]+):(?P<line>\d+)(?::\d+)?:\s*(?P<message>\S.*)$")
_LINE_REF = re.compile(r"\b(line|lines) \d+")
_FOUND = re.compile(r"\bFound (\d+) (?:errors?|problems?|issues?)\b")
_NAME_PREFIX = re.compile(r"^(test_?|Test)")


def findings(output: str) -> Counter[str]:
    """A tool's findings, each keyed as `path: message` without line or column numbers."""
    keys: Counter[str] = Counter()
    for line in output.splitlines():
        match = FINDING_LINE.match(line.strip())
        if match:
            message = _LINE_REF.sub(r"\1 N", match.group("message").strip())
            keys[f"{match.group('path')}: {message}"] += 1
    return keys


def finding_count(output: str) -> int | None:
    """The number of findings as the tool sums them up ("Found 95 errors."), when it does."""
    counts = [int(n) for n in _FOUND.findall(output)]
    return max(counts) if counts else None


class CheckBaseline(BaseModel):
    name: str
    status: CheckStatus
    failing_tests: list[str] = Field(default_factory=list)
    failures: list[FailingTest] = Field(default_factory=list)  # the first few, trimmed: for the first prompt
    tests_failing: int = 0  # by the runner's count (may exceed the ids it listed)
    findings: dict[str, int] = Field(default_factory=dict)
    finding_count: int | None = None
    inventory: TestInventory | None = None  # every test by id with its outcome on the base

    @classmethod
    def of(cls, check: CheckResult) -> CheckBaseline:
        counted = check.tests.failed + check.tests.errors if check.tests is not None else 0
        return cls(
            name=check.name, status=check.status, failing_tests=sorted({t.test_id for t in check.failing_tests}),
            failures=[t.model_copy(update={"traceback": t.traceback[-FAILURE_CHARS:]}) for t in check.failing_tests[:MAX_FAILURES]],
            tests_failing=max(counted, len(check.failing_tests)),
            findings=dict(findings(check.output)) if check.tests is None else {},
            finding_count=finding_count(check.output) if check.tests is None else None,
            inventory=check.inventory,
        )


class Baseline(BaseModel):
    """The checks' outcome on the base commit, as far as a comparison needs it."""

    format: Literal[2]  # a baseline cached before test inventories existed is read as unusable, and made again
    base_sha: str
    checks: list[CheckBaseline] = Field(default_factory=list)
    tests_run: int = 0
    duration_s: float = 0.0  # the full check's time on the base (0: not known)

    @classmethod
    def of(cls, base_sha: str, report: CheckReport) -> Baseline:
        ran = sum(c.tests.run for c in report.checks if c.tests is not None)
        return cls(format=2, base_sha=base_sha, checks=[CheckBaseline.of(c) for c in report.checks], tests_run=ran,
                   duration_s=report.duration_s)

    def check(self, name: str) -> CheckBaseline | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failing_tests(self) -> list[str]:
        return sorted({t for c in self.checks for t in c.failing_tests})

    @property
    def red_checks(self) -> list[str]:
        return [c.name for c in self.checks if c.status not in GREEN]


def baseline_cache_file(settings: Settings, base_sha: str) -> Path:
    """Where the baseline of `base_sha` under these sandbox settings is kept."""
    key = hashlib.sha256(f"{base_sha}\x1f{settings.sandbox.model_dump_json()}".encode()).hexdigest()[:24]
    return settings.data_dir / "baselines" / f"{key}.json"


def save_baseline(settings: Settings, baseline: Baseline) -> None:
    """Keep `baseline` for the episodes on its base commit (the cycle's baseline step, `aura-sicd scan`)."""
    cached = baseline_cache_file(settings, baseline.base_sha)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(baseline.model_dump_json(), encoding="utf-8")


def relates_to_task(test_id: str, task_text: str) -> bool:
    """Whether a test is what the task is about: its id, its name or its file's name appears in the task."""
    if test_id in task_text:
        return True
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", task_text))
    lowered = {w.lower() for w in words}
    parts = re.split(r"::|/|\.|#|\s+", test_id.split("[")[0])  # pytest, Go, Java/minitest (#), RSpec (words)
    names = [p for p in parts if p and p not in ("py", "js", "ts", "go")]
    for name in names[-2:] + [names[0]] if names else []:
        stem = _NAME_PREFIX.sub("", name)
        if len(stem) > 2 and (stem in words or stem.lower() in lowered):
            return True
    return False


def compare(baseline: Baseline, report: CheckReport, task_text: str) -> Comparison:
    out = Comparison()
    base_failing = set(baseline.failing_tests)
    now_failing = {t.test_id for c in report.checks for t in c.failing_tests}
    out.new_failures = sorted(now_failing - base_failing)
    still = sorted(now_failing & base_failing)
    out.still_failing_related = [t for t in still if relates_to_task(t, task_text)]
    out.unchanged = [t for t in still if t not in out.still_failing_related]
    out.fixed = sorted(base_failing - now_failing) if _same_tests_ran(baseline, report) else []
    for check in report.checks:
        base = baseline.check(check.name)
        why = _worse(base, CheckBaseline.of(check), check)
        if why:
            out.worse_checks[check.name] = why
        elif check.status not in GREEN and check.tests is None:
            out.unchanged.append(f"check {check.name}")
    return out


def _same_tests_ran(baseline: Baseline, report: CheckReport) -> bool:
    """At least as many tests ran as at base: a test counts as fixed, not as deleted."""
    return sum(c.tests.run for c in report.checks if c.tests is not None) >= baseline.tests_run


def _worse(base: CheckBaseline | None, now: CheckBaseline, check: CheckResult) -> str | None:
    if now.status in GREEN:
        return None
    if base is None:
        return "it did not run on main"
    if base.status in GREEN:
        return f"it was {base.status.value} on main"
    if now.status is not base.status and now.status in (CheckStatus.TIMEOUT, CheckStatus.OOM, CheckStatus.ERROR):
        return f"it ended in {now.status.value} (on main: {base.status.value})"
    if check.tests is not None:
        ids_listed = len(now.failing_tests) >= now.tests_failing and len(base.failing_tests) >= base.tests_failing
        if not ids_listed and now.tests_failing > base.tests_failing:
            return f"{now.tests_failing} tests fail, {base.tests_failing} on main"
        return None  # failing tests are compared by id
    new = Counter(now.findings) - Counter(base.findings)
    if new:
        shown = "; ".join(sorted(new)[:5])
        return f"{sum(new.values())} new finding(s): {shown}"
    if now.finding_count is not None and base.finding_count is not None and now.finding_count > base.finding_count:
        return f"{now.finding_count} findings, {base.finding_count} on main"
    return None


def related_failures(baseline: Baseline, task_text: str) -> str | None:
    """The base's failing tests that the task is about, with their messages: what attempt 1 should fix."""
    shown = []
    for check in baseline.checks:
        for failure in check.failures:
            if relates_to_task(failure.test_id, task_text):
                text = f"FAILED {failure.test_id}: {failure.message.strip()[:300]}"
                if failure.traceback:
                    text += "\n" + failure.traceback
                shown.append(text)
    if not shown:
        return None
    return ("These tests fail on the base commit, before any change, and relate to the task; the change "
            "should make them pass:\n\n" + "\n\n".join(shown))


def no_change_evidence(baseline: Baseline | None, task_text: str) -> str | None:
    """Why "no change is needed" holds — tests ran on the base and none that relates to the task fails —
    or None when the claim does not hold or nothing shows it (no baseline, no test ran)."""
    if baseline is None or baseline.tests_run == 0:
        return None
    if any(relates_to_task(t, task_text) for t in baseline.failing_tests):
        return None
    text = f"On the base commit {baseline.base_sha[:12]}, {baseline.tests_run} tests ran and none that relates to the task fails"
    if baseline.failing_tests:
        shown = ", ".join(baseline.failing_tests[:5]) + (" ..." if len(baseline.failing_tests) > 5 else "")
        text += f" (failing on main, not about the task: {shown})"
    return text + "."


def no_change_refusal(baseline: Baseline | None, task_text: str) -> str:
    """Why a "no change is needed" answer is not accepted (see `no_change_evidence`)."""
    if baseline is None:
        return "No change was proposed, and without the checks on the base nothing shows that none is needed."
    related = [t for t in baseline.failing_tests if relates_to_task(t, task_text)]
    if related:
        return (f"No change was proposed, but tests this task is about fail on the base: {', '.join(related[:5])}. "
                "Propose the change that makes them pass.")
    return "No change was proposed, and no test ran on the base to show that none is needed."


def changed_test_files(diff: str) -> list[str]:
    """The tests, test data and collection hooks a diff adds or changes (bot/path_kinds.py)."""
    paths = {b for _, b in _DIFF_PATH.findall(diff)}
    return sorted(p for p in paths if is_test_path(p))


def in_files(test_id: str, files: list[str]) -> bool:
    """Whether a test id belongs to one of `files` (pytest `path::name`; Go `package/dir::Name`)."""
    where = test_id.split("::")[0]
    return any(f == where or (f.endswith("_test.go") and f.rsplit("/", 1)[0] == where) for f in files)


def reproduced_tests(baseline: Baseline, tests_on_base: CheckReport, attempt: CheckReport, files: list[str]) -> list[str]:
    """Tests in `files` that fail with only the attempt's tests on the base, pass with the whole attempt,
    and did not already fail on the base: the evidence that the change fixes what its tests show."""
    before = {t.test_id for c in tests_on_base.checks for t in c.failing_tests if in_files(t.test_id, files)}
    after = {t.test_id for c in attempt.checks for t in c.failing_tests}
    return sorted(before - after - set(baseline.failing_tests))
