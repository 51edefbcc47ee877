"""Parsers and judging on recorded runner output (pytest JUnit, go test -json, node:test TAP)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox import CheckReport, CheckResult, CheckStatus, CommandResult, FailingTest, TestCounts
from sandbox.parsers import (
    go_unfinished_tests,
    parse_go_test_json,
    parse_junit,
    parse_node_output,
    parse_pytest_summary,
    strip_ansi,
)
from sandbox.plans import CheckSpec
from sandbox.runner import judge, pass_rate

DATA = Path(__file__).parent / "data"


def test_junit_counts_ids_and_tracebacks():
    counts, failing = parse_junit((DATA / "pytest-junit-failing.xml").read_bytes())
    assert counts == TestCounts(passed=1, failed=2, errors=1, skipped=1)
    assert [f.test_id for f in failing] == [
        "tests/test_a.py::test_bad", "tests/test_a.py::TestC::test_m", "tests/test_c.py::test_fixture"]
    assert "assert 1 == 2" in failing[0].traceback
    assert "fixture broke" in failing[2].traceback


def test_junit_collection_error():
    counts, failing = parse_junit((DATA / "pytest-junit-collection-error.xml").read_bytes())
    assert counts == TestCounts(errors=1)
    assert failing[0].test_id == "tests/test_b.py" and failing[0].message == "collection failure"
    assert "No module named 'nope'" in failing[0].traceback


def test_junit_traceback_is_trimmed_from_the_start():
    long = "x" * 10000 + "\nE   AssertionError: the end"
    xml = f'<testsuite><testcase classname="t" name="n" file="t.py"><failure message="m">{long}</failure></testcase></testsuite>'
    _, failing = parse_junit(xml)
    assert len(failing[0].traceback) <= 2000 and failing[0].traceback.endswith("the end")


def test_pytest_summary_fallback():
    output = (DATA / "pytest-failing-output.txt").read_text()
    assert parse_pytest_summary(output) == TestCounts(passed=1, failed=2, errors=1, skipped=1)
    assert parse_pytest_summary("no summary here") is None


def test_go_test_json():
    counts, failing = parse_go_test_json((DATA / "go-test.json.txt").read_text())
    assert counts == TestCounts(passed=1, failed=1, skipped=1)
    assert failing[0].test_id == "example.com/calc.TestWrong"
    assert "Add(1, 1) = 2, want 3" in failing[0].traceback


def test_go_build_failure_is_an_error():
    output = (DATA / "go-test-build-failed.txt").read_text()
    counts, failing = parse_go_test_json(output)
    assert counts == TestCounts(errors=1)
    assert failing[0].test_id == "example.com/calc" and "syntax error" in failing[0].traceback
    check = judge(CheckSpec(name="tests", command=["go", "test"], parser="go"),
                  CommandResult(argv=["go"], exit_code=1, output=output))
    assert check.status == CheckStatus.ERROR
    assert pass_rate([check]) == (0.0, "build failed in example.com/calc")


def test_node_tap():
    counts, failing = parse_node_output((DATA / "node-test-tap.txt").read_text())
    assert counts == TestCounts(passed=1, failed=1, skipped=1)
    assert failing[0].test_id == "wrong"
    assert failing[0].message == "Expected values to be strictly equal:"
    assert "2 !== 3" in failing[0].traceback


def test_node_other_runner_summaries():
    jest = "Tests:       1 failed, 2 skipped, 3 passed, 6 total\n"
    assert parse_node_output(jest)[0] == TestCounts(passed=3, failed=1, skipped=2)
    vitest = " Tests  2 failed | 5 passed (7)\n"
    assert parse_node_output(vitest)[0] == TestCounts(passed=5, failed=2)
    mocha = "  4 passing (8ms)\n  1 pending\n  2 failing\n"
    assert parse_node_output(mocha)[0] == TestCounts(passed=4, failed=2, skipped=1)
    assert parse_node_output("done")[0] is None
    # uvu 0.5 as lukeed/kleur's `npm test` prints it (colour codes around the numbers)
    uvu = ("\x1b[1m\x1b[4m\x1b[37mtest/index.js\x1b[22m\x1b[24m\x1b[39m\n\x1b[90m• \x1b[39m\x1b[31m✘ \x1b[39m  (7 / 8)\n\n"
           "  Total:     9\x1b[32m\n  Passed:    7\x1b[39m\n  Skipped:   1\n  Duration:  11.79ms\n")
    assert parse_node_output(uvu)[0] == TestCounts(passed=7, failed=1, skipped=1)


def test_node_ava_summary_and_failures():
    ava = ("  ✔ camelCase\n  - [skip] skipped one\n  ✘ [fail]: broken one\n  ─\n\n  broken one\n\n  test.js:411\n\n"
           "  Difference (- actual, + expected):\n\n  - 1\n  + 2\n\n  ─\n\n  1 test failed\n  1 test skipped\n")
    counts, failing = parse_node_output(ava)
    assert counts == TestCounts(passed=1, failed=1, skipped=1)  # ava prints no passed count after a failure
    assert [f.test_id for f in failing] == ["broken one"]
    assert parse_node_output("  ✔ a\n  ✔ b\n  ─\n\n  20 tests passed\n")[0] == TestCounts(passed=20)


def _check(name: str, status: CheckStatus, **kw) -> CheckResult:
    return CheckResult(name=name, command=[name], status=status, **kw)


def test_pass_rate_rules():
    ok = _check("syntax", CheckStatus.PASSED)
    assert pass_rate([ok, _check("tests", CheckStatus.FAILED, exit_code=1, tests=TestCounts(passed=3, failed=1))]) == (
        0.75, "3 of 4 tests passed")
    assert pass_rate([ok, _check("tests", CheckStatus.TIMEOUT, duration_s=60)])[1] == "the tests timed out after 60 s"
    assert pass_rate([ok, _check("tests", CheckStatus.OOM)]) == (0.0, "the tests ran out of memory")
    assert pass_rate([ok, _check("tests", CheckStatus.ERROR, exit_code=127)])[1] == "the test command could not start (exit 127)"
    assert pass_rate([ok, _check("tests", CheckStatus.PASSED)]) == (1.0, "tests passed (no per-test counts in its output)")
    assert pass_rate([ok, _check("tests", CheckStatus.PASSED, tests=TestCounts(skipped=2))]) == (0.0, "no tests ran (2 skipped)")
    assert pass_rate([ok]) == (0.0, "the plan has no test check")
    syntax = _check("syntax", CheckStatus.FAILED, output='*** Error compiling \'./a.py\'...\n  File "./a.py", line 3\n    def (\n        ^\nSyntaxError: invalid syntax\n')
    assert pass_rate([syntax, _check("tests", CheckStatus.PASSED, tests=TestCounts(passed=1))]) == (
        0.0, "syntax error: a.py:3 SyntaxError: invalid syntax")


def test_judge_statuses():
    spec = CheckSpec(name="tests", command=["python", "-m", "pytest"], parser="pytest")
    no_tests = judge(spec, CommandResult(argv=[], exit_code=5, output="no tests ran in 0.01s"))
    assert no_tests.status == CheckStatus.FAILED and no_tests.tests == TestCounts()
    interrupted = judge(spec, CommandResult(argv=[], exit_code=2, output=""),
                        (DATA / "pytest-junit-collection-error.xml").read_bytes())
    assert interrupted.status == CheckStatus.ERROR
    assert pass_rate([interrupted])[1] == "collection error in tests/test_b.py"
    missing = judge(CheckSpec(name="lint", command=["ruff"]), CommandResult(argv=[], exit_code=127))
    assert missing.status == CheckStatus.ERROR
    timed_out = judge(spec, CommandResult(argv=[], exit_code=None, timed_out=True))
    assert timed_out.status == CheckStatus.TIMEOUT


def test_summary_is_compact_and_bounded():
    failing = [FailingTest(test_id=f"tests/test_x.py::test_{i}", message=f"AssertionError: case {i}",
                           traceback="line\n" * 300) for i in range(20)]
    report = CheckReport(backend="bwrap", pass_rate=0.2, pass_rate_reason="5 of 25 tests passed", checks=[
        _check("syntax", CheckStatus.PASSED),
        _check("lint", CheckStatus.FAILED, exit_code=1, output="calc.py:1:1: F821 undefined name 'x'\n"),
        _check("tests", CheckStatus.FAILED, exit_code=1, tests=TestCounts(passed=5, failed=20), failing_tests=failing),
    ])
    text = report.summary(max_chars=1500)
    assert len(text) <= 1500
    assert text.startswith("Checks: syntax passed, lint FAILED, tests FAILED")
    assert "Tests: 5 passed, 20 failed" in text and "Pass rate: 0.20 (5 of 25 tests passed)" in text
    assert "F821 undefined name" in text and "FAILED tests/test_x.py::test_0: AssertionError: case 0" in text
    assert "more not shown" in text
    green = CheckReport(backend="docker", pass_rate=1.0, pass_rate_reason="1 of 1 tests passed",
                        checks=[_check("tests", CheckStatus.PASSED, tests=TestCounts(passed=1))])
    assert green.summary() == ("Checks: tests passed\nTests: 1 passed, 0 failed, 0 errors, 0 skipped\n"
                               "Pass rate: 1.00 (1 of 1 tests passed)")


def test_go_tests_that_never_ended():
    events = [
        {"Action": "run", "Package": "m", "Test": "TestA"}, {"Action": "pass", "Package": "m", "Test": "TestA"},
        {"Action": "run", "Package": "m", "Test": "TestB"}, {"Action": "run", "Package": "m", "Test": "TestB/sub"},
        {"Action": "output", "Package": "m", "Test": "TestB", "Output": "waiting\n"},
    ]
    output = "\n".join(json.dumps(e) for e in events) + "\nnot json\n"
    assert go_unfinished_tests(output) == ["m.TestB"]


def test_a_junit_report_with_thousands_of_failures_is_bounded():
    """A hostile or huge report must not fill the store, the prompt or a comment (issue 18)."""
    from sandbox.reports import MAX_FAILING_TESTS, MAX_TEST_ID_CHARS

    cases = "".join(f'<testcase classname="t" name="{"x" * 5000 if i == 0 else f"test_{i}"}">'
                    f'<failure message="{"m" * 5000}">boom</failure></testcase>' for i in range(5000))
    junit = f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'.encode()
    spec = CheckSpec(name="tests", command=["pytest"], parser="pytest")
    check = judge(spec, CommandResult(argv=["pytest"], exit_code=1, output=""), junit)
    assert check.tests is not None and check.tests.failed == 5000  # the counts keep the totals
    assert len(check.failing_tests) == MAX_FAILING_TESTS
    assert len(check.failing_tests[0].test_id) == MAX_TEST_ID_CHARS and len(check.failing_tests[0].message) == 1000


def test_colour_codes_are_stripped_before_parsing():
    # vitest 3 with colours on (CI=true and no NO_COLOR), as recorded: bold/dim codes inside the summary
    coloured = ("\x1b[2m Test Files \x1b[22m \x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m\x1b[2m | \x1b[22m"
                "\x1b[1m\x1b[32m2 passed\x1b[39m\x1b[22m\x1b[90m (3)\x1b[39m\n"
                "\x1b[2m      Tests \x1b[22m \x1b[1m\x1b[31m2 failed\x1b[39m\x1b[22m\x1b[2m | \x1b[22m"
                "\x1b[1m\x1b[32m5 passed\x1b[39m\x1b[22m\x1b[90m (7)\x1b[39m\n")
    assert parse_node_output(coloured)[0] is None  # the codes hide the summary from the parser
    assert parse_node_output(strip_ansi(coloured))[0] == TestCounts(passed=5, failed=2)
    spec = CheckSpec(name="tests", command=["npm", "test"], parser="node")
    assert strip_ansi("\x1b]8;;https://x.org\x07link\x1b]8;;\x07 \x1b[0Kdone") == "link done"
    assert judge(spec, CommandResult(argv=[], exit_code=1, output=strip_ansi(coloured))).tests.failed == 2
