"""The test inventory of a check run, from each runner's report (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox import open_sandbox
from sandbox.inventory import Outcome, from_go_events, from_junit, from_pytest_plugin, from_tap
from sandbox.parsers import go_events, junit_test_id
from tests.repos import CALC_FILES, make_repo
from tests.sandbox.conftest import settings_for

DATA = Path(__file__).parent / "data"

MORE_TESTS = (
    "import pytest\n\n\n@pytest.mark.parametrize('x', [1, 2])\ndef test_p(x):\n    assert x\n\n\n"
    "@pytest.mark.skip(reason='later')\ndef test_s():\n    pass\n\n\n"
    "@pytest.mark.xfail(reason='known')\ndef test_x():\n    assert 0\n\n\n"
    "def test_deselected():\n    pass\n"
)


async def test_pytest_runs_name_every_test_with_its_outcome(tmp_path: Path, bwrap_settings):
    repo = make_repo(tmp_path / "calc", {
        **CALC_FILES, "tests/test_more.py": MORE_TESTS,
        "pytest.ini": "[pytest]\naddopts = --deselect tests/test_more.py::test_deselected\n",
    })
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        report = await box.check(repo)
    inventory = report.check("tests").inventory
    assert inventory is not None and inventory.source.startswith("pytest")
    assert inventory.tests == {
        "tests/test_calc.py::test_add": Outcome.FAILED, "tests/test_calc.py::test_mul": Outcome.PASSED,
        "tests/test_more.py::test_p[1]": Outcome.PASSED, "tests/test_more.py::test_p[2]": Outcome.PASSED,
        "tests/test_more.py::test_s": Outcome.SKIPPED, "tests/test_more.py::test_x": Outcome.XFAILED,
        "tests/test_more.py::test_deselected": Outcome.DESELECTED,
    }
    assert inventory.reasons["tests/test_more.py::test_s"] == "Skipped: later"
    assert inventory.reasons["tests/test_more.py::test_x"] == "known"


def test_plugin_lines_keep_the_worst_phase_and_survive_a_cut_line():
    lines = [
        {"collected": ["t.py::a", "t.py::b", "t.py::c"]},
        {"id": "t.py::a", "when": "setup", "outcome": "passed", "xfail": False, "reason": ""},
        {"id": "t.py::a", "when": "call", "outcome": "passed", "xfail": False, "reason": ""},
        {"id": "t.py::a", "when": "teardown", "outcome": "failed", "xfail": False, "reason": ""},
        {"id": "t.py::b", "when": "call", "outcome": "passed", "xfail": True, "reason": "bug 7"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"id": "t.py::c", "wh'
    inventory = from_pytest_plugin(text)
    assert inventory.tests == {"t.py::a": Outcome.ERROR, "t.py::b": Outcome.XPASSED, "t.py::c": Outcome.COLLECTED}
    assert from_pytest_plugin("") is None


def test_junit_reports_tell_skips_from_xfails():
    xml = (b'<testsuites><testsuite><testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py"/>'
           b'<testcase classname="tests.test_a" name="test_s" file="tests/test_a.py"><skipped type="pytest.skip" '
           b'message="no db"/></testcase><testcase classname="tests.test_a" name="test_x" file="tests/test_a.py">'
           b'<skipped type="pytest.xfail" message="bug"/></testcase></testsuite></testsuites>')
    inventory = from_junit(xml, junit_test_id)
    assert inventory.tests == {"tests/test_a.py::test_ok": Outcome.PASSED, "tests/test_a.py::test_s": Outcome.SKIPPED,
                               "tests/test_a.py::test_x": Outcome.XFAILED}


def test_go_events_name_tests_and_skips():
    inventory = from_go_events(go_events((DATA / "go-test.json.txt").read_text()))
    assert sorted(inventory.tests.values()) == sorted([Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED])
    assert all(t.startswith("example.com/") or "." in t for t in inventory.tests)


def test_node_tap_names_tests_skips_and_subtests():
    inventory = from_tap((DATA / "node-test-tap.txt").read_text())
    assert inventory.tests == {"adds": Outcome.PASSED, "wrong": Outcome.FAILED, "later": Outcome.SKIPPED}
    nested = "# Subtest: math\n    # Subtest: adds\n    ok 1 - adds\n    1..1\nok 1 - math\n" \
             "# Subtest: todo\nnot ok 2 - todo # TODO not yet\n"
    assert from_tap(nested).tests == {"math > adds": Outcome.PASSED, "math": Outcome.PASSED, "todo": Outcome.XFAILED}


def test_cargo_output_names_tests_and_ignored_ones():
    from sandbox.languages.rust import cargo_inventory, parse_cargo_test

    output = (DATA / "cargo-test-1.95.txt").read_text()
    inventory = cargo_inventory(output)
    _, failing = parse_cargo_test(output)
    assert inventory.tests["rcalc::tests::slow"] is Outcome.SKIPPED
    assert {f.test_id for f in failing} <= {t for t, o in inventory.tests.items() if o is Outcome.FAILED}


def _ids_agree(inventory, counts, failing) -> None:
    """The inventory names the failing tests as the parser does, and holds as many tests as it counted."""
    assert inventory is not None and counts is not None
    assert {f.test_id for f in failing} == {t for t, o in inventory.tests.items() if o is Outcome.FAILED or o is Outcome.ERROR}
    assert len(inventory.tests) == counts.passed + counts.failed + counts.errors + counts.skipped


def test_surefire_phpunit_and_rspec_reports_give_an_inventory():
    from sandbox.inventory import from_junit_cases, from_rspec_json
    from sandbox.languages.java import parse_java_reports
    from sandbox.languages.php import parse_phpunit
    from sandbox.languages.ruby import parse_rspec

    surefire = (DATA / "surefire-TEST-calc.CalcTest.xml").read_bytes()
    _ids_agree(from_junit_cases(surefire, "#", "Surefire"), *parse_java_reports(surefire, ""))
    phpunit = (DATA / "phpunit-9.6-junit.xml").read_bytes()
    _ids_agree(from_junit_cases(phpunit, "::", "PHPUnit"), *parse_phpunit(phpunit, ""))
    rspec = (DATA / "rspec-3.12.json").read_bytes()
    _ids_agree(from_rspec_json(rspec), *parse_rspec(rspec, ""))
    assert from_junit_cases(surefire[: len(surefire) // 2], "#", "Surefire") is None  # half-written: no inventory
    assert from_rspec_json(b"{") is None
