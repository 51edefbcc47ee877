"""Running a plan in a prepared backend and judging the results: statuses, test counts and the pass rate
(the test-as-reward signal)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path

from sandbox.base import Backend, CommandResult
from sandbox.errors import SandboxError
from sandbox.inventory import (
    from_go_events,
    from_junit,
    from_junit_cases,
    from_pytest_plugin,
    from_rspec_json,
    from_tap,
)
from sandbox.languages.java import parse_java_reports
from sandbox.languages.junit import REPORT_ENV
from sandbox.languages.php import parse_phpunit
from sandbox.languages.ruby import parse_minitest, parse_rspec
from sandbox.languages.rust import cargo_inventory, cargo_unfinished_tests, parse_cargo_test
from sandbox.parsers import (
    go_events,
    go_unfinished_tests,
    junit_test_id,
    parse_go_test_json,
    parse_junit,
    parse_node_output,
    parse_pytest_summary,
    strip_ansi,
)
from sandbox.plans import TEST_TIMEOUT_MS, CheckSpec, Plan
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts, bounded_failing
from sandbox.selection import SELECT_ENV, SELECT_PLUGIN

# pytest exit codes: 2 interrupted (collection errors), 3 internal error, 4 usage error, 5 no tests collected
PYTEST_NO_TESTS = 5
MISSING_COMMAND = (126, 127)
JUNIT_DIR = "/tmp/aura-sicd"
PLUGIN_DIR = f"{JUNIT_DIR}/plugins"
TIMEOUT_PLUGIN = "aura_sicd_timeout"
PLUGIN_SOURCE = Path(__file__).with_name("plugins") / f"{TIMEOUT_PLUGIN}.py"
INVENTORY_PLUGIN = "aura_sicd_inventory"
INVENTORY_SOURCE = Path(__file__).with_name("plugins") / f"{INVENTORY_PLUGIN}.py"
SELECT_SOURCE = Path(__file__).with_name("plugins") / f"{SELECT_PLUGIN}.py"
UNFINISHED = "did not finish"
REPORT_PARSERS = ("surefire", "phpunit", "rspec")  # whose command writes a report to $AURA_SICD_REPORT

# writes (mode, path, text) triples; mode `missing` leaves an existing file alone, `always` replaces it
WRITE_FILES = (
    'while [ "$#" -ge 3 ]; do if [ "$1" = always ] || [ ! -e "$2" ]; then '
    'mkdir -p "$(dirname "$2")" && printf "%s" "$3" > "$2" || exit 1; fi; shift 3; done'
)

logger = logging.getLogger("sandbox")


def with_timeout_plugin(command: list[str]) -> list[str] | None:
    """`command` loading the per-test timeout plugin, when the command starts pytest itself; None for
    wrappers (sh -c, tox, make), which may not pass PYTHONPATH on."""
    program = command[0].rsplit("/", 1)[-1] if command else ""
    if program in ("pytest", "py.test"):
        return [command[0], "-p", TIMEOUT_PLUGIN, *command[1:]]
    if program.startswith("python") and "-m" in command:  # python [-We ...] -m pytest
        at = command.index("-m")
        if command[at + 1:at + 2] == ["pytest"] and all(a.startswith("-") for a in command[1:at]):
            return [*command[:at + 2], "-p", TIMEOUT_PLUGIN, *command[at + 2:]]
    return None


def with_test_limit(command: list[str], test_timeout_s: float) -> list[str]:
    """`command` with the per-test limit filled in where it asks for it (node --test-timeout=...)."""
    if not any(TEST_TIMEOUT_MS in arg for arg in command):
        return command
    if test_timeout_s <= 0:
        return [arg for arg in command if TEST_TIMEOUT_MS not in arg]
    return [arg.replace(TEST_TIMEOUT_MS, f"{test_timeout_s * 1000:.0f}") for arg in command]


def _with_plugin(command: list[str], plugin: str) -> list[str]:
    """`command` (already loading the timeout plugin) loading `plugin` too."""
    at = command.index(TIMEOUT_PLUGIN) + 1
    return [*command[:at], "-p", plugin, *command[at:]]


async def write_files(backend: Backend, files: list[tuple[str, str, str]]) -> bool:
    """Write (mode, path, text) into the sandbox; paths are relative to the workspace or absolute."""
    if not files:
        return True
    result = await backend.exec(["sh", "-c", WRITE_FILES, "write-files", *(part for f in files for part in f)],
                                timeout=60)
    if not result.ok:
        logger.warning("writing %s into the sandbox failed: %s", [f[1] for f in files], result.output[-500:])
    return result.ok


async def _running_test(backend: Backend, path: str) -> str | None:
    """The node id the timeout plugin left in `path`: the test running when the run stopped."""
    try:
        data = await backend.read_file(path)
    except SandboxError:  # a Docker sandbox removed after a command that would not die
        return None
    return (data or b"").decode("utf-8", "replace").strip() or None


async def run_plan(backend: Backend, plan: Plan, *, default_timeout: float) -> CheckReport:
    started = time.monotonic()
    await write_files(backend, [("missing", path, text) for path, text in plan.check_files.items()])
    plugged = {s.name: c for s in plan.checks if s.parser == "pytest" and (c := with_timeout_plugin(s.command))}
    plugins = [("always", f"{PLUGIN_DIR}/{source.name}", source.read_text(encoding="utf-8"))
               for source in (PLUGIN_SOURCE, INVENTORY_SOURCE)]
    selection_path = f"{JUNIT_DIR}/selected-{uuid.uuid4().hex[:12]}.txt"
    if plan.selected_tests is not None and plugged:
        plugged = {name: _with_plugin(command, SELECT_PLUGIN) for name, command in plugged.items()}
        plugins += [("always", f"{PLUGIN_DIR}/{SELECT_PLUGIN}.py", SELECT_SOURCE.read_text(encoding="utf-8")),
                    ("always", selection_path, "".join(f"{p}\n" for p in plan.selected_tests))]
    if plugged and not await write_files(backend, plugins):
        plugged = {}
    results = []
    for spec in plan.checks:
        env = {**plan.env, **spec.env}
        run_id = uuid.uuid4().hex[:12]
        junit_path = f"{JUNIT_DIR}/junit-{run_id}.xml"  # fresh per run: no stale report
        current_path = f"{JUNIT_DIR}/current-test-{run_id}.txt"
        inventory_path = f"{JUNIT_DIR}/inventory-{run_id}.jsonl"
        command = with_test_limit(plugged.get(spec.name, spec.command), plan.test_timeout_s)
        report_path = f"{JUNIT_DIR}-report-{run_id}"  # in /tmp itself, which exists before any command
        if spec.parser in REPORT_PARSERS:
            env[REPORT_ENV] = report_path
        if spec.parser == "pytest":
            # the environment reaches pytest however the repository's command starts it (tox, make, sh)
            env["PYTEST_ADDOPTS"] = f"--junitxml={junit_path} -o junit_family=xunit1"
        if spec.name in plugged:
            env["PYTHONPATH"] = ":".join(p for p in (PLUGIN_DIR, env.get("PYTHONPATH")) if p)
            env["AURA_SICD_TEST_TIMEOUT_S"] = f"{plan.test_timeout_s:g}"
            env["AURA_SICD_CURRENT_TEST"] = current_path
            env["AURA_SICD_INVENTORY"] = inventory_path
            env["PYTEST_ADDOPTS"] += f" -p {INVENTORY_PLUGIN}"
            if plan.selected_tests is not None:
                env[SELECT_ENV] = selection_path
        result = await backend.exec(command, timeout=spec.timeout_s or default_timeout, env=env)
        result = result.model_copy(update={"output": strip_ansi(result.output)})
        junit = None
        if spec.parser == "pytest" and not result.timed_out:
            junit = await backend.read_file(junit_path)
        elif spec.parser in REPORT_PARSERS:
            junit = await backend.read_file(report_path)
        unfinished = None
        if spec.name in plugged and (result.timed_out or not junit):
            unfinished = await _running_test(backend, current_path)
        check = judge(spec, result, junit, unfinished)
        if spec.name in plugged:
            check.inventory = from_pytest_plugin(await backend.read_file(inventory_path) or b"") or check.inventory
        results.append(check)
    rate, reason = pass_rate(results)
    narrowed = plan.selected_tests is not None and (bool(plugged) or all(s.parser != "pytest" for s in plan.checks))
    return CheckReport(backend=backend.name, checks=results, pass_rate=rate, pass_rate_reason=reason,
                       duration_s=round(time.monotonic() - started, 3), plan_source=plan.source,
                       selected_tests=plan.selected_tests if narrowed else None)


def judge(spec: CheckSpec, result: CommandResult, junit: bytes | None = None, unfinished: str | None = None,
          ) -> CheckResult:
    """One check's result from its command's outcome and, for tests, the runner's report (`junit`: pytest's
    JUnit XML or the report file of REPORT_PARSERS); `unfinished`
    names the test that was running when the run stopped without finishing."""
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
        if unfinished:
            how = f"the check was stopped after {result.duration_s:.0f} s" if result.timed_out else "the run stopped"
            check.failing_tests.append(FailingTest(test_id=unfinished, message=f"{UNFINISHED}: {how}"))
    elif spec.parser == "go":
        check.tests, check.failing_tests = parse_go_test_json(result.output)
        check.inventory = from_go_events(go_events(result.output))
        if result.timed_out:
            check.failing_tests += [FailingTest(test_id=t, message=f"{UNFINISHED}: the check was stopped after "
                                                f"{result.duration_s:.0f} s") for t in go_unfinished_tests(result.output)]
    elif spec.parser == "node":
        check.tests, check.failing_tests = parse_node_output(result.output)
        check.inventory = from_tap(result.output)
    elif spec.parser == "cargo":
        check.tests, check.failing_tests = parse_cargo_test(result.output)
        check.inventory = cargo_inventory(result.output)
        if result.timed_out:
            check.failing_tests += [FailingTest(test_id=t, message=f"{UNFINISHED}: the check was stopped after "
                                                f"{result.duration_s:.0f} s") for t in cargo_unfinished_tests(result.output)]
    elif spec.parser == "surefire":
        check.tests, check.failing_tests = _parse_report(parse_java_reports, junit, result.output)
        check.inventory = from_junit_cases(junit, "#", "JUnit reports (Surefire/Gradle)")
    elif spec.parser == "phpunit":
        check.tests, check.failing_tests = _parse_report(parse_phpunit, junit, result.output)
        check.inventory = from_junit_cases(junit, "::", "JUnit report (PHPUnit)")
    elif spec.parser == "rspec":
        check.tests, check.failing_tests = _parse_report(parse_rspec, junit, result.output)
        check.inventory = from_rspec_json(junit)
    elif spec.parser == "minitest":
        check.tests, check.failing_tests = parse_minitest(result.output)
    broken = spec.parser == "go" or spec.parser in ("cargo", *REPORT_PARSERS, "minitest") and any(
        f.message == "build failed" or f.message.startswith("collection failure") for f in check.failing_tests)
    if broken and check.tests and check.tests.errors and not check.tests.run - check.tests.errors and \
            check.status == CheckStatus.FAILED:
        check.status = CheckStatus.ERROR  # nothing built (or loaded), nothing ran
    check.failing_tests = bounded_failing(check.failing_tests)
    return check


def _parse_report(parse, report: bytes | None, output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    try:
        return parse(report, output)
    except Exception:  # a half-written report (killed mid-run): what the output alone tells
        return parse(None, output)


def _read_pytest(check: CheckResult, result: CommandResult, junit: bytes | None) -> None:
    if junit:
        try:
            check.tests, check.failing_tests = parse_junit(junit)
            check.inventory = from_junit(junit, junit_test_id)
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
    unfinished = next((f.test_id for f in tests.failing_tests if f.message.startswith(UNFINISHED)), None)
    if tests.status == CheckStatus.TIMEOUT:
        return 0.0, f"the tests timed out after {tests.duration_s:.0f} s" + (f" in {unfinished}" if unfinished else "")
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
    if counts is None and unfinished:
        return 0.0, f"the test {unfinished} did not finish (exit {tests.exit_code})"
    if counts is None:
        if tests.status == CheckStatus.PASSED:
            return 1.0, f"{tests.name} passed (no per-test counts in its output)"
        return 0.0, f"{tests.name} failed with exit {tests.exit_code} (no per-test counts in its output)"
    if counts.run == 0:
        return 0.0, "no tests ran" + (f" ({counts.skipped} skipped)" if counts.skipped else "")
    rate = counts.passed / counts.run
    return rate, f"{counts.passed} of {counts.run} tests passed"
