"""bot.cycle.reward: the formula and the verdict rules, as a table of cases."""

from __future__ import annotations

import pytest

from bot.records import Rubric, Verdict
from bot.cycle.reward import compute_reward, rubric_score
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts

GOOD = Rubric(coverage=0.8, accuracy=0.9, coherence=0.7, formatting=1.0)  # score 0.84
POOR = Rubric(coverage=0.3, accuracy=0.4, coherence=0.5, formatting=0.5)  # score 0.40


def suite(passed: int, failed: int = 0, skipped: int = 0, *, required: bool = True) -> CheckResult:
    status = CheckStatus.FAILED if failed else CheckStatus.PASSED
    failing = [FailingTest(test_id=f"tests/test_a.py::test_{i}", message="assert 1 == 2") for i in range(failed)]
    return CheckResult(name="tests", command=["pytest"], status=status, required=required,
                       tests=TestCounts(passed=passed, failed=failed, skipped=skipped), failing_tests=failing)


def lint_check(ok: bool, *, required: bool = True) -> CheckResult:
    return CheckResult(name="lint", command=["ruff", "check"], required=required,
                       status=CheckStatus.PASSED if ok else CheckStatus.FAILED)


def report(*checks: CheckResult, pass_rate: float | None = None) -> CheckReport:
    if pass_rate is None:
        counts = [c.tests for c in checks if c.tests]
        run = sum(t.run for t in counts)
        pass_rate = sum(t.passed for t in counts) / run if run else 0.0
    return CheckReport(backend="test", checks=list(checks), pass_rate=pass_rate)


def test_rubric_score_weights() -> None:
    assert rubric_score(GOOD) == pytest.approx(0.4 * 0.9 + 0.3 * 0.8 + 0.2 * 0.7 + 0.1 * 1.0)
    assert rubric_score(Rubric(coverage=1, accuracy=1, coherence=1, formatting=1)) == 1.0
    assert rubric_score(Rubric(coverage=0, accuracy=0, coherence=0, formatting=0)) == 0.0


# (report, rubric, require_all_checks, expected verdict, expected value, a phrase from the reasons)
CASES = [
    ("all green, good rubric", report(suite(10), lint_check(True)), GOOD, True,
     Verdict.APPROVED, 0.7 + 0.3 * 0.84, "All 10 tests passed."),
    ("rubric below threshold", report(suite(10), lint_check(True)), POOR, True,
     Verdict.REJECTED, 0.7 + 0.3 * 0.4, "below the approval threshold 0.60"),
    ("no rubric", report(suite(10)), None, True,
     Verdict.REJECTED, 0.7, "gave no rubric"),
    ("one test fails", report(suite(9, failed=1)), GOOD, True,
     Verdict.REJECTED, 0.7 * 0.9 + 0.3 * 0.84, "Tests fail: pass rate 90% of 10 tests, 1 failing."),
    ("tests fail, flags relaxed", report(suite(9, failed=1)), GOOD, False,
     Verdict.REJECTED, 0.7 * 0.9 + 0.3 * 0.84, "Tests fail"),
    ("non-required test check fails", report(suite(5), suite(4, failed=1, required=False),
                                             pass_rate=1.0), GOOD, False,
     Verdict.REJECTED, 0.7 + 0.3 * 0.84, "1 failing"),
    ("lint red, all checks required", report(suite(10), lint_check(False)), GOOD, True,
     Verdict.REJECTED, 0.7 + 0.3 * 0.84, "Required checks are not green: lint."),
    ("lint red, checks not required", report(suite(10), lint_check(False)), GOOD, False,
     Verdict.APPROVED, 0.7 + 0.3 * 0.84, "does not require every check"),
    ("optional lint red", report(suite(10), lint_check(False, required=False)), GOOD, True,
     Verdict.APPROVED, 0.7 + 0.3 * 0.84, "Every required check is green."),
    ("no tests at all", report(lint_check(True), pass_rate=1.0), GOOD, True,
     Verdict.REJECTED, 0.3 * 0.84, "No tests ran"),
    ("every test skipped", report(suite(0, skipped=4), pass_rate=1.0), GOOD, True,
     Verdict.REJECTED, 0.3 * 0.84, "No tests ran (4 skipped)"),
    ("empty report", report(), GOOD, True,
     Verdict.REJECTED, 0.3 * 0.84, "No tests ran"),
    ("everything fails", report(suite(0, failed=3), lint_check(False)), None, True,
     Verdict.REJECTED, 0.0, "Tests fail: pass rate 0% of 3 tests, 3 failing."),
]


@pytest.mark.parametrize(("name", "rep", "rubric", "require_all", "verdict", "value", "phrase"), CASES,
                         ids=[c[0] for c in CASES])
def test_reward_table(name, rep, rubric, require_all, verdict, value, phrase) -> None:
    reward = compute_reward(rep, rubric, threshold=0.6, require_all_checks=require_all)
    assert reward.verdict is verdict
    assert reward.value == pytest.approx(value, abs=1e-4)
    assert any(phrase in reason for reason in reward.reasons), reward.reasons
    assert all(reason.endswith(".") for reason in reward.reasons)


def test_pass_rate_dominates_rubric() -> None:
    perfect_rubric_failing_tests = compute_reward(report(suite(1, failed=1)),
                                                  Rubric(coverage=1, accuracy=1, coherence=1, formatting=1),
                                                  threshold=0.6)
    weak_rubric_passing_tests = compute_reward(report(suite(2)), POOR, threshold=0.6)
    assert weak_rubric_passing_tests.value > perfect_rubric_failing_tests.value


def test_threshold_is_inclusive() -> None:
    rubric = Rubric(coverage=0.5, accuracy=0.5, coherence=0.5, formatting=0.5)
    assert compute_reward(report(suite(3)), rubric, threshold=0.5).verdict is Verdict.APPROVED
    assert compute_reward(report(suite(3)), rubric, threshold=0.51).verdict is Verdict.REJECTED


def test_reported_pass_rate_below_one_blocks_even_without_failing_counts() -> None:
    # e.g. the sandbox lowered the pass rate for a collection error in one module
    rep = report(suite(5), pass_rate=0.5)
    rep.pass_rate_reason = "collection error in tests/test_b.py"
    reward = compute_reward(rep, GOOD, threshold=0.6)
    assert reward.verdict is Verdict.REJECTED
    assert "collection error in tests/test_b.py" in reward.reasons[0]


def test_all_reasons_reported_together() -> None:
    reward = compute_reward(report(suite(1, failed=1), lint_check(False)), POOR, threshold=0.6)
    assert len(reward.reasons) == 3
    assert reward.rubric_score == 0.4 and reward.pass_rate == 0.5
