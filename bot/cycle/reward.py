"""Reward and verdict: computed here, never by a model. The formula is explained in docs/reward.md.

    reward  = PASS_RATE_WEIGHT * pass_rate + RUBRIC_WEIGHT * rubric_score     (rubric missing: 0)
    verdict = APPROVED only if tests ran and all passed, required checks are green (when required),
              and the rubric is present and at least the threshold.

With a baseline (the checks on the unmodified base, bot/cycle/baseline.py) "all passed" and "green" become
"no worse than main": see docs/reward.md.
"""

from __future__ import annotations

from bot.records import Comparison, Reward, Rubric, Verdict
from sandbox.reports import CheckReport

PASS_RATE_WEIGHT = 0.7
RUBRIC_WEIGHT = 0.3
REPRODUCTION_BONUS = 0.05  # the change's own tests fail on the base and pass with it
RUBRIC_WEIGHTS = {"accuracy": 0.4, "coverage": 0.3, "coherence": 0.2, "formatting": 0.1}


def rubric_score(rubric: Rubric) -> float:
    """Weighted mean of the discriminator's scores: accuracy 0.4, coverage 0.3, coherence 0.2, formatting 0.1."""
    return round(sum(getattr(rubric, name) * weight for name, weight in RUBRIC_WEIGHTS.items()), 4)


def tests_run(report: CheckReport) -> int:
    """Tests that actually ran (passed, failed or errored) across every check that counted tests."""
    return sum(check.tests.run for check in report.checks if check.tests is not None)


def tests_failing(report: CheckReport) -> int:
    """Failed or errored tests, whichever check they came from (required or not)."""
    counted = sum(c.tests.failed + c.tests.errors for c in report.checks if c.tests is not None)
    listed = sum(len(c.failing_tests) for c in report.checks)
    return max(counted, listed)


def compute_reward(
    report: CheckReport, rubric: Rubric | None, *, threshold: float, require_all_checks: bool = True,
    baseline: Comparison | None = None,
) -> Reward:
    """Score an evaluated iteration and decide whether it is approved; `reasons` say why in sentences."""
    ran = tests_run(report)
    failing = tests_failing(report)
    # Without a single test run there is no evidence the change works: the pass rate counts as 0.
    pass_rate = report.pass_rate if ran > 0 else 0.0
    score = rubric_score(rubric) if rubric is not None else None
    value = PASS_RATE_WEIGHT * pass_rate + RUBRIC_WEIGHT * (score or 0.0)
    if baseline is not None and baseline.reproduced:
        value += REPRODUCTION_BONUS

    blockers: list[str] = []
    if ran == 0:
        skipped = sum(c.tests.skipped for c in report.checks if c.tests is not None)
        detail = f" ({skipped} skipped)" if skipped else ""
        blockers.append(
            f"No tests ran{detail}, so nothing shows the change works; the pass rate counts as 0. "
            "Add or enable tests that exercise the change."
        )
    elif baseline is None and (failing > 0 or pass_rate < 1.0):
        why = f" ({report.pass_rate_reason})" if report.pass_rate_reason else ""
        blockers.append(
            f"Tests fail: pass rate {pass_rate:.0%} of {ran} tests{why}"
            + (f", {failing} failing." if failing else ".")
        )

    red = [c.name for c in report.failed_checks if c.required]
    if baseline is not None:
        blockers += _against_baseline(baseline, require_all_checks)
    elif red and require_all_checks:
        blockers.append(f"Required checks are not green: {', '.join(red)}.")

    if rubric is None:
        blockers.append("The discriminator gave no rubric, and approval needs one.")
    elif score is not None and score < threshold:
        blockers.append(f"The rubric score {score:.2f} is below the approval threshold {threshold:.2f}.")

    dodges = list(baseline.dodges) if baseline is not None else []
    if dodges:
        value = 0.0  # a change that weakens its tests is worth nothing to learn from, however green it looks
    if blockers:
        return Reward(value=_clamp(value), pass_rate=pass_rate, rubric_score=score, verdict=Verdict.REJECTED,
                      reasons=blockers, dodges=dodges)

    if baseline is not None:
        return Reward(value=_clamp(value), pass_rate=pass_rate, rubric_score=score, verdict=Verdict.APPROVED,
                      reasons=_baseline_met(baseline, ran, score, threshold))
    reasons = [f"All {ran} tests passed."]
    if require_all_checks:
        reasons.append("Every required check is green.")
    elif red:
        reasons.append(f"Checks {', '.join(red)} failed, but this repository does not require every check.")
    reasons.append(f"The rubric score {score:.2f} reaches the approval threshold {threshold:.2f}.")
    return Reward(value=_clamp(value), pass_rate=pass_rate, rubric_score=score, verdict=Verdict.APPROVED,
                  reasons=reasons)


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _against_baseline(comparison: Comparison, require_all_checks: bool) -> list[str]:
    blockers = []
    if comparison.new_failures:
        blockers.append(f"Tests fail that did not fail on main: {_names(comparison.new_failures)}.")
    if comparison.still_failing_related:
        blockers.append(f"The tests this task is about still fail: {_names(comparison.still_failing_related)}.")
    blockers += comparison.dodges
    worse = [f"{name} ({why})" for name, why in comparison.worse_checks.items()]
    if worse and require_all_checks:
        blockers.append(f"Checks are worse than on main: {'; '.join(worse)}.")
    return blockers


def _baseline_met(comparison: Comparison, ran: int, score: float | None, threshold: float) -> list[str]:
    reasons = [f"{ran} tests ran, and no test fails that passed on main."]
    if comparison.reproduced:
        reasons.append(f"Reproduced: {_names(comparison.reproduced)} fail on main and pass with the change.")
    if comparison.fixed:
        reasons.append(f"Fixed by this change: {_names(comparison.fixed)}.")
    if comparison.worse_checks:
        reasons.append(f"Checks worse than on main, not required by this repository: {', '.join(comparison.worse_checks)}.")
    else:
        reasons.append("No check is worse than on main.")
    if comparison.unchanged:
        reasons.append(f"Already failing on main, unchanged: {_names(comparison.unchanged)}.")
    reasons.append(f"The rubric score {score:.2f} reaches the approval threshold {threshold:.2f}.")
    return reasons


def _clamp(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)
