"""Judging an attempt against the checks on the unmodified base (bot/cycle/baseline.py, bot/cycle/reward.py)."""

from __future__ import annotations

from bot.cycle.baseline import Baseline, compare, finding_count, findings, relates_to_task
from bot.records import Rubric, Verdict
from bot.cycle.reward import compute_reward
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts

# mypy's and ruff's own output formats, as python-slugify's and itsdangerous's mains print them
MYPY_MAIN = """slugify/slugify.py:84: error: Incompatible types in assignment (expression has type "str", variable has type "Pattern[str]")  [assignment]
slugify/__main__.py:12: error: Function is missing a return type annotation  [no-untyped-def]
slugify/__main__.py:40: error: Call to untyped function "slugify_params" in typed context  [no-untyped-call]
Found 3 errors in 2 files (checked 5 source files)
"""
RUFF_MAIN = """src/itsdangerous/signer.py:21:5: UP006 Use `type` instead of `Type` for type annotation
src/itsdangerous/timed.py:99:9: B904 Within an `except` clause, raise exceptions with `raise ... from err`
Found 2 errors.
"""
GOOD = Rubric(coverage=0.8, accuracy=0.9, coherence=0.9, formatting=0.9)


def shifted(output: str, by: int) -> str:
    """The same findings after a change added `by` lines above each of them."""
    import re

    return re.sub(r"^([^:\s]+):(\d+)", lambda m: f"{m.group(1)}:{int(m.group(2)) + by}", output, flags=re.M)


def pytest_check(passed: int, failing: list[str]) -> CheckResult:
    return CheckResult(name="tests", command=["pytest"], status=CheckStatus.FAILED if failing else CheckStatus.PASSED,
                       exit_code=1 if failing else 0, tests=TestCounts(passed=passed, failed=len(failing)),
                       failing_tests=[FailingTest(test_id=t) for t in failing])


def lint_check(name: str, output: str) -> CheckResult:
    return CheckResult(name=name, command=[name], status=CheckStatus.FAILED if output.strip() else CheckStatus.PASSED,
                       exit_code=1 if output.strip() else 0, output=output)


def report(*checks: CheckResult) -> CheckReport:
    run = sum(c.tests.run for c in checks if c.tests)
    passed = sum(c.tests.passed for c in checks if c.tests)
    return CheckReport(backend="bwrap", checks=list(checks), pass_rate=passed / run if run else 0.0)


def test_findings_are_keyed_without_line_numbers_and_counted_as_the_tool_counts():
    keys = findings(MYPY_MAIN)
    assert sum(keys.values()) == 3
    assert 'slugify/__main__.py: error: Function is missing a return type annotation  [no-untyped-def]' in keys
    assert findings(shifted(MYPY_MAIN, 7)) == keys
    assert finding_count(MYPY_MAIN) == 3 and finding_count(RUFF_MAIN) == 2 and finding_count("All checks passed!") is None
    assert findings('a.py:3: error: Name "x" already defined on line 1') == findings('a.py:9: error: Name "x" already defined on line 4')


def test_debt_already_on_main_does_not_block_a_correct_fix():
    base = Baseline.of("abc", report(pytest_check(10, []), lint_check("types", MYPY_MAIN), lint_check("lint", RUFF_MAIN)))
    attempt = report(pytest_check(11, []), lint_check("types", shifted(MYPY_MAIN, 2)), lint_check("lint", shifted(RUFF_MAIN, 2)))

    comparison = compare(base, attempt, "slugify() drops the separator")
    reward = compute_reward(attempt, GOOD, threshold=0.6, baseline=comparison)

    assert not comparison.blocking
    assert comparison.unchanged == ["check types", "check lint"]
    assert reward.verdict is Verdict.APPROVED
    assert any(r.startswith("Already failing on main, unchanged: check types, check lint") for r in reward.reasons)
    # the same attempt judged alone is blocked by the debt, as before the baseline
    assert compute_reward(attempt, GOOD, threshold=0.6).verdict is Verdict.REJECTED


def test_a_new_finding_or_more_findings_than_on_main_blocks():
    base = Baseline.of("abc", report(pytest_check(3, []), lint_check("types", MYPY_MAIN)))
    new = MYPY_MAIN.replace("Found 3 errors", 'slugify/slugify.py:90: error: Argument 1 to "sub" has incompatible type  [arg-type]\nFound 4 errors')
    comparison = compare(base, report(pytest_check(3, []), lint_check("types", new)), "task")
    assert "1 new finding(s)" in comparison.worse_checks["types"]
    reward = compute_reward(report(pytest_check(3, []), lint_check("types", new)), GOOD, threshold=0.6, baseline=comparison)
    assert reward.verdict is Verdict.REJECTED and "Checks are worse than on main: types" in " ".join(reward.reasons)
    # a finding cut from the output still shows in the tool's own count
    counted_only = "Found 5 errors in 2 files"
    assert "5 findings, 3 on main" in compare(base, report(pytest_check(3, []), lint_check("types", counted_only)), "t").worse_checks["types"]


def test_a_check_green_on_main_and_red_now_blocks():
    base = Baseline.of("abc", report(pytest_check(3, []), lint_check("lint", "")))
    comparison = compare(base, report(pytest_check(3, []), lint_check("lint", RUFF_MAIN)), "task")
    assert comparison.worse_checks == {"lint": "it was passed on main"}


def test_tests_failing_on_main_block_only_when_the_task_is_about_them():
    base = Baseline.of("abc", report(pytest_check(8, ["tests/test_timed.py::test_clock_skew", "tests/test_url.py::test_quote"])))
    task = "quote() double-encodes a percent sign"

    comparison = compare(base, report(pytest_check(9, ["tests/test_timed.py::test_clock_skew"])), task)
    assert comparison.fixed == ["tests/test_url.py::test_quote"]
    assert comparison.unchanged == ["tests/test_timed.py::test_clock_skew"]
    assert not comparison.blocking

    unfixed = compare(base, report(pytest_check(8, ["tests/test_timed.py::test_clock_skew", "tests/test_url.py::test_quote"])), task)
    assert unfixed.still_failing_related == ["tests/test_url.py::test_quote"] and unfixed.blocking

    regression = compare(base, report(pytest_check(8, ["tests/test_timed.py::test_clock_skew", "tests/test_sign.py::test_sign"])), task)
    assert regression.new_failures == ["tests/test_sign.py::test_sign"] and regression.blocking


def test_a_failing_test_deleted_is_not_counted_as_fixed():
    base = Baseline.of("abc", report(pytest_check(4, ["tests/test_a.py::test_quote"])))
    comparison = compare(base, report(pytest_check(4, [])), "quote breaks")  # 4 ran, 5 ran on main
    assert comparison.fixed == []


def test_relates_to_task_matches_names_files_and_ids():
    assert relates_to_task("tests/test_calc.py::test_add", "add() returns the wrong result")
    assert relates_to_task("tests/test_slugify.py::TestSlugify::test_max_length", "max_length cuts a word")
    assert relates_to_task("pkg/uuid_test.go::TestParse", "Parse accepts a bad UUID")
    assert not relates_to_task("tests/test_timed.py::test_clock_skew", "quote() double-encodes a percent sign")


def test_relates_to_task_reads_java_minitest_and_rspec_ids():
    assert relates_to_task("com.example.SlugTest#truncate", "truncate() drops the last word")
    assert relates_to_task("CalcTest#test_divide", "divide by zero raises the wrong error")
    assert relates_to_task("spec/calc_spec.rb::Calc divide rounds down", "divide rounds up")
