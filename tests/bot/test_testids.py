"""Per-test outcomes from runners' reports (bot/runs/testids.py), on output the real projects' runners wrote."""

from __future__ import annotations

import json

import pytest

from bot.runs.testids import ReportError, parse

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_misc.TestMiscellaneous" name="test_load" file="tests/test_misc.py" line="3"/>
<testcase classname="tests.test_misc" name="test_x[a-b]" file="tests/test_misc.py" line="9"><failure message="x"/></testcase>
<testcase classname="tests.test_misc" name="test_y" file="tests/test_misc.py" line="12"><skipped message="s"/></testcase>
</testsuite></testsuites>"""


def test_junit_ids_are_the_sandbox_checks_ids() -> None:
    assert parse("junit", JUNIT) == {"tests/test_misc.py::TestMiscellaneous::test_load": "passed",
                                     "tests/test_misc.py::test_x[a-b]": "failed",
                                     "tests/test_misc.py::test_y": "skipped"}


def test_go_events_keep_package_and_subtest() -> None:
    events = [{"Action": "run", "Package": "github.com/google/uuid", "Test": "TestNew"},
              {"Action": "pass", "Package": "github.com/google/uuid", "Test": "TestNew"},
              {"Action": "fail", "Package": "github.com/google/uuid", "Test": "TestGetTime/provided"},
              {"Action": "skip", "Package": "github.com/google/uuid", "Test": "TestSlow"},
              {"Action": "pass", "Package": "github.com/google/uuid"}]
    assert parse("go", "\n".join(json.dumps(e) for e in events)) == {
        "github.com/google/uuid.TestNew": "passed", "github.com/google/uuid.TestGetTime/provided": "failed",
        "github.com/google/uuid.TestSlow": "skipped"}


CARGO = """\
     Running unittests src/lib.rs (target/debug/deps/fnv-0123456789abcdef)
running 2 tests
test test::basic_tests ... ok
test test::slow ... ignored, needs time
   Doc-tests fnv
running 1 test
test lib.rs - (line 30) ... FAILED
"""


def test_cargo_tests_are_named_under_their_target() -> None:
    assert parse("cargo", CARGO) == {"unittests::test::basic_tests": "passed", "unittests::test::slow": "skipped",
                                     "fnv::lib.rs - (line 30)": "failed"}


TAP = """\
TAP version 13
# Subtest: parse
    # Subtest: handles quotes
    ok 1 - handles quotes
    not ok 2 - handles commas
    ok 3 - later # SKIP not yet
    1..3
not ok 1 - parse
ok 2 - camelCase works
"""


def test_tap_leaves_under_their_suites() -> None:
    assert parse("tap", TAP) == {"parse > handles quotes": "passed", "parse > handles commas": "failed",
                                 "parse > later": "skipped", "camelCase works": "passed"}


def test_vitest_json_ids_are_file_and_full_name() -> None:
    report = {"config": {"root": "/w"}, "testResults": [
        {"name": "/w/src/index.spec.ts", "status": "failed", "assertionResults": [
            {"fullName": "parse > keeps flags", "status": "passed"},
            {"fullName": "parse > skips", "status": "pending"},
            {"fullName": "stringify", "status": "failed"}]},
        {"name": "/w/src/broken.spec.ts", "status": "failed", "assertionResults": []}]}
    assert parse("vitest", "npm noise\n" + json.dumps(report)) == {
        "src/index.spec.ts::parse > keeps flags": "passed", "src/index.spec.ts::parse > skips": "skipped",
        "src/index.spec.ts::stringify": "failed", "src/broken.spec.ts": "failed"}


def test_vitest_ids_are_relative_to_the_run_root_when_the_report_does_not_say_it() -> None:
    """vitest 3's JSON report has no config.root: its absolute file names made the CI run's ids
    (/tmp/.../ci/path-to-regexp/src/...) differ from the sandbox's (/workspace/src/...)."""
    report = {"testResults": [{"name": "/tmp/x/ci/p/src/index.spec.ts", "status": "passed",
                               "assertionResults": [{"fullName": "parse > keeps flags", "status": "passed"}]}]}
    assert parse("vitest", json.dumps(report), root="/tmp/x/ci/p") == {"src/index.spec.ts::parse > keeps flags": "passed"}


def test_test_unit_verbose_and_uvu_files() -> None:
    testunit = "TestRakeTaskArguments: \n  test_deconstruct_keys:\t.: (0.000101)\n  test_fails:\tF: (0.01)\n"
    assert parse("testunit", testunit) == {"TestRakeTaskArguments#test_deconstruct_keys": "passed",
                                           "TestRakeTaskArguments#test_fails": "failed"}
    uvu = "\x1b[1mtest/colors.js\x1b[22m\n\x1b[90m• \x1b[39m• •  (3 / 3)\n\ntest/index.js\n• ✘   (1 / 2)\n  Total: 5\n"
    assert parse("uvu", uvu) == {"test/colors.js": "passed", "test/index.js": "failed"}


def test_a_broken_report_says_so() -> None:
    with pytest.raises(ReportError, match="JUnit XML"):
        parse("junit", "<testsuites><testcase")
    with pytest.raises(ReportError, match="unknown report format"):
        parse("nunit", "")
