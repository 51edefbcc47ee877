"""Running a plan in a prepared backend and judging the results: statuses, test counts and the pass rate
(the test-as-reward signal)."""

from __future__ import annotations

import re
import time
import uuid

from sandbox.base import Backend, CommandResult
from sandbox.parsers import parse_go_test_json, parse_junit, parse_node_output, parse_pytest_summary
from sandbox.plans import CheckSpec, Plan
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts

# pytest exit codes: 2 interrupted (collection errors), 3 internal error, 4 usage error, 5 no tests collected
PYTEST_NO_TESTS = 5
MISSING_COMMAND = (126, 127)
JUNIT_DIR = "/tmp/aura-sicd"


async def run_plan(backend: Backend, plan: Plan, *, default_timeout: float) -> CheckReport:
    started = time.monotonic()
    results = []
    for spec in plan.checks:
        env = dict(plan.env)
        junit_path = f"{JUNIT_DIR}/junit-{uuid.uuid4().hex[:12]}.xml"  # fresh per run: no stale report
        if spec.parser == "pytest":
            # the environment reaches pytest however the repository's command starts it (tox, make, sh)
            env["PYTEST_ADDOPTS"] = f"--junitxml={junit_path} -o junit_family=xunit1"
        result = await backend.exec(spec.command, timeout=spec.timeout_s or default_timeout, env=env)
        junit = await backend.read_file(junit_path) if spec.parser == "pytest" and not result.timed_out else None
        results.append(judge(spec, result, junit))
    rate, reason = pass_rate(results)
    return CheckReport(backend=backend.name, checks=results, pass_rate=rate, pass_rate_reason=reason,
                       duration_s=round(time.monotonic() - started, 3))


def judge(spec: CheckSpec, result: CommandResult, junit: bytes | None = None) -> CheckResult:
    """One check's result from its command's outcome and, for tests, the runner's report."""
    check = CheckResult(name=spec.name, command=spec.command, status=CheckStatus.PASSED, exit_code=result.exit_code,
                        duration_s=round(result.duration_s, 3), output=result.output, required=spec.required)
    if result.timed_out:
        check.status = CheckStatus.TIMEOUT
    elif result.oom:
        check.status = CheckStatus.OOM
    elif result.exit_code in MISSING_COMMAND:
        check.status = CheckStatus.ERROR
    elif result.exit_code != 0:
        check.status = CheckStatus.FAILED
    if spec.parser == "pytest":
        _read_pytest(check, result, junit)
    elif spec.parser == "go":
        check.tests, check.failing_tests = parse_go_test_json(result.output)
        if check.tests and check.tests.errors and not check.tests.run - check.tests.errors and check.status == CheckStatus.FAILED:
            check.status = CheckStatus.ERROR  # nothing built, nothing ran
    elif spec.parser == "node":
        check.tests, check.failing_tests = parse_node_output(result.output)
    return check


def _read_pytest(check: CheckResult, result: CommandResult, junit: bytes | None) -> None:
    if junit:
        try:
            check.tests, check.failing_tests = parse_junit(junit)
        except Exception:  # a half-written report (killed mid-run): fall back to the summary line
            check.tests = parse_pytest_summary(result.output)
    else:
        check.tests = parse_pytest_summary(result.output)
    if check.status == CheckStatus.FAILED and result.exit_code not in (1, PYTEST_NO_TESTS):
        check.status = CheckStatus.ERROR  # collection error, internal error, usage error
    if result.exit_code == PYTEST_NO_TESTS:
        check.tests = check.tests or TestCounts()


def _first_syntax_error(output: str) -> str:
    where = re.search(r'File "([^"]+)", line (\d+)', output)
    what = re.search(r"^(\w*Error: .*)$", output, re.M)
    location = f"{where.group(1).removeprefix('./')}:{where.group(2)}" if where else ""
    return " ".join(p for p in (location, what.group(1) if what else "") if p) or "see the syntax check's output"


def _collection_errors(failing: list[FailingTest]) -> str:
    return ", ".join(f.test_id for f in failing[:3])


def pass_rate(checks: list[CheckResult]) -> tuple[float, str]:
    """Tests passed over tests run; 0 with the reason for a syntax error, a collection error or no tests."""
    syntax = next((c for c in checks if c.name == "syntax"), None)
    if syntax is not None and syntax.status not in (CheckStatus.PASSED, CheckStatus.SKIPPED):
        return 0.0, f"syntax error: {_first_syntax_error(syntax.output)}"
    tests = next((c for c in checks if c.tests is not None), None) or next((c for c in checks if c.name == "tests"), None)
    if tests is None:
        return 0.0, "the plan has no test check"
    if tests.status == CheckStatus.TIMEOUT:
        return 0.0, f"the tests timed out after {tests.duration_s:.0f} s"
    if tests.status == CheckStatus.OOM:
        return 0.0, "the tests ran out of memory"
    if tests.status == CheckStatus.ERROR:
        if tests.exit_code in MISSING_COMMAND:
            return 0.0, f"the test command could not start (exit {tests.exit_code})"
        collection = [f for f in tests.failing_tests if f.message.startswith("collection failure")]
        if collection:
            return 0.0, f"collection error in {_collection_errors(collection)}"
        build = [f for f in tests.failing_tests if f.message == "build failed"]
        if build:
            return 0.0, f"build failed in {_collection_errors(build)}"
        return 0.0, f"the tests could not run (exit {tests.exit_code})"
    counts = tests.tests
    if counts is None:
        if tests.status == CheckStatus.PASSED:
            return 1.0, f"{tests.name} passed (no per-test counts in its output)"
        return 0.0, f"{tests.name} failed with exit {tests.exit_code} (no per-test counts in its output)"
    if counts.run == 0:
        return 0.0, "no tests ran" + (f" ({counts.skipped} skipped)" if counts.skipped else "")
    rate = counts.passed / counts.run
    return rate, f"{counts.passed} of {counts.run} tests passed"
