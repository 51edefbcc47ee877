"""Tests that stop running, by id and by count (bot/cycle/inventory.py, bot/cycle/judging.stopped_tests)."""

from __future__ import annotations

from bot.cycle.baseline import Baseline
from bot.cycle.inventory import regressions, task_asks_to_change
from bot.cycle.judging import stopped_tests
from sandbox.inventory import Outcome as O
from sandbox.inventory import TestInventory
from sandbox.reports import CheckReport, CheckResult, CheckStatus, TestCounts

BASE = TestInventory(source="pytest", tests={
    "t/test_a.py::test_x": O.FAILED, "t/test_a.py::test_y": O.PASSED, "t/test_a.py::test_p[1]": O.PASSED,
    "t/test_a.py::test_p[2]": O.PASSED, "t/test_b.py::test_zebra": O.PASSED, "t/test_b.py::test_old": O.SKIPPED,
})


def test_every_way_a_test_stops_running_has_its_reason():
    now = TestInventory(source="pytest", tests={
        "t/test_a.py::test_x": O.XFAILED, "t/test_a.py::test_y": O.DESELECTED, "t/test_a.py::test_p[1]": O.PASSED,
    }, reasons={})
    found = {r.test_id: r.reason for r in regressions(BASE, now)}
    assert found == {
        "t/test_a.py::test_x": "newly marked xfail, so its failure no longer counts",
        "t/test_a.py::test_y": "deselected",
        "t/test_a.py::test_p[2]": "a case of this parametrized test is gone",
        "t/test_b.py::test_zebra": "its file no longer yields tests (deleted, renamed or no longer collected)",
    }  # test_old did not run on the base: not a regression


def test_a_run_without_a_report_and_one_that_stopped_early():
    assert {r.reason for r in regressions(BASE, None)} == {"no test reported at all: the run ended early or its report is gone"}
    stopped = TestInventory(source="pytest", tests={t: O.COLLECTED for t in BASE.tests})
    assert "collected but never run: the run ended before it" in {r.reason for r in regressions(BASE, stopped)}


def test_the_task_may_ask_for_a_test_to_go():
    task = "test_zebra is obsolete since zebras were removed: delete the test."
    assert task_asks_to_change("t/test_b.py::test_zebra", task)
    assert not task_asks_to_change("t/test_b.py::test_zebra", "test_zebra fails: fix the zebra module")
    now = TestInventory(source="pytest", tests={t: o for t, o in BASE.tests.items() if "test_zebra" not in t})
    assert regressions(BASE, now, task) == []


def _report(run: int) -> CheckReport:
    check = CheckResult(name="tests", command=["npm", "test"], status=CheckStatus.PASSED, tests=TestCounts(passed=run))
    return CheckReport(backend="bwrap", checks=[check], pass_rate=1.0)


def test_without_per_test_ids_fewer_tests_counted_is_a_regression():
    baseline = Baseline.of("a" * 40, _report(5))
    assert [str(r) for r in stopped_tests(baseline, _report(4), "")] == ["(the test count) (4 tests ran, 5 on main)"]
    assert stopped_tests(baseline, _report(6), "") == []


def test_object_addresses_in_parameter_ids_do_not_make_a_test_vanish():
    base = TestInventory(source="pytest", tests={"t/test_t.py::test_day[a-<FakeDate object at 0x7fa8e1737c90>]": O.PASSED})
    now = TestInventory(source="pytest", tests={"t/test_t.py::test_day[a-<FakeDate object at 0x7faf81eed410>]": O.PASSED})
    assert regressions(base, now) == []
