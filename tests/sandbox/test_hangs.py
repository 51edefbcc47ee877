"""A test that never ends costs its limit, not the whole check: the per-test timeout plugin, its hard exit
and the check-level limit, each naming the test that hung. Run for real with bubblewrap."""

from __future__ import annotations

import shutil
import time

import pytest

from sandbox import CheckStatus, detect_plan, open_sandbox
from sandbox.runner import TIMEOUT_PLUGIN, with_timeout_plugin

from .conftest import settings_for, write_tree

HANGING = {
    "tests/test_calc.py": (
        "import time\n\n\n"
        "def test_quick():\n    assert 1 + 1 == 2\n\n\n"
        "def test_forever():\n    while True:\n        time.sleep(1)\n\n\n"
        "def test_after():\n    assert True\n"
    ),
}
# SIGALRM blocked: only the hard exit (faulthandler) ends this test
UNINTERRUPTIBLE = {
    "tests/test_stuck.py": (
        "import signal\nimport time\n\n\n"
        "def test_stuck():\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n    time.sleep(3600)\n"
    ),
}

# QuixBugs' buggy bitcount (`n ^= n - 1` never reaches 0) and its parametrized test, every case of which hangs
BITCOUNT = {
    "bitcount.py": "def bitcount(n):\n    count = 0\n    while n:\n        n ^= n - 1\n        count += 1\n"
                   "    return count\n",
    "test_bitcount.py": (
        "import pytest\n\nfrom bitcount import bitcount\n\n\n"
        "@pytest.mark.parametrize('input_data,expected', [((127,), 7), ((128,), 1), ((3005,), 9), ((13,), 3),"
        " ((14,), 3), ((27,), 4), ((834,), 4), ((254,), 7), ((256,), 1)])\n"
        "def test_bitcount(input_data, expected):\n    assert bitcount(*input_data) == expected\n\n\n"
        "def test_zero():\n    assert bitcount(0) == 0\n"
    ),
}


def _config(text: str) -> dict[str, str]:
    return {".github/aura-sicd.yml": text}


def test_the_plugin_goes_only_into_commands_that_start_pytest():
    assert with_timeout_plugin(["python", "-m", "pytest", "-q"]) == ["python", "-m", "pytest", "-p", TIMEOUT_PLUGIN, "-q"]
    assert with_timeout_plugin(["/venv/bin/pytest", "tests"]) == ["/venv/bin/pytest", "-p", TIMEOUT_PLUGIN, "tests"]
    assert with_timeout_plugin(["sh", "-c", "pytest"]) is None  # a wrapper may drop PYTHONPATH
    assert with_timeout_plugin(["tox", "-e", "py"]) is None


def test_repository_settings_for_the_limits(tmp_path):
    assert detect_plan(write_tree(tmp_path / "a", HANGING)).test_timeout_s == 60
    plan = detect_plan(write_tree(tmp_path / "b", {**HANGING, **_config("test_timeout_s: 5\ncheck_timeout_s: 120\n")}))
    assert (plan.test_timeout_s, plan.check_timeout_s) == (5, 120)


@pytest.mark.bwrap
async def test_a_hanging_test_fails_at_its_limit_and_the_run_goes_on(bwrap_settings, tmp_path):
    repo = write_tree(tmp_path / "repo", {**HANGING, **_config("test_timeout_s: 2\n")})
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED
    assert tests.tests.model_dump() == {"passed": 2, "failed": 1, "errors": 0, "skipped": 0}
    [failing] = tests.failing_tests
    assert failing.test_id == "tests/test_calc.py::test_forever"
    assert "longer than its limit of 2 s" in failing.message
    assert tests.duration_s < 30
    assert "test_forever" in report.summary()


@pytest.mark.bwrap
async def test_a_test_out_of_reach_of_signals_ends_the_run_and_is_named(bwrap_settings, tmp_path):
    repo = write_tree(tmp_path / "repo", {**UNINTERRUPTIBLE, **_config("test_timeout_s: 1\n")})
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED and tests.duration_s < 30  # 1 s + the hard exit's grace
    assert "Timeout" in tests.output  # faulthandler's dump of the stuck stack
    assert [(f.test_id, f.message) for f in tests.failing_tests] == [
        ("tests/test_stuck.py::test_stuck", "did not finish: the run stopped")]
    assert report.pass_rate == 0.0
    assert report.pass_rate_reason.startswith("the test tests/test_stuck.py::test_stuck did not finish")


@pytest.mark.bwrap
async def test_the_check_limit_names_the_test_that_was_running(bwrap_settings, tmp_path):
    repo = write_tree(tmp_path / "repo", {**HANGING, **_config("test_timeout_s: 0\ncheck_timeout_s: 4\n")})
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.TIMEOUT
    assert tests.failing_tests[0].test_id == "tests/test_calc.py::test_forever"
    assert report.pass_rate_reason == "the tests timed out after 4 s in tests/test_calc.py::test_forever"


@pytest.mark.bwrap
async def test_under_default_settings_a_hang_fails_within_90_seconds(bwrap_settings, tmp_path):
    repo = write_tree(tmp_path / "repo", HANGING)
    settings = settings_for("bwrap", timeout_s=type(bwrap_settings)().timeout_s)  # the default check limit
    assert settings.timeout_s < 600
    started = time.monotonic()
    async with open_sandbox(settings, repo) as box:
        report = await box.check(repo)
    assert time.monotonic() - started < 90
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED
    assert [f.test_id for f in tests.failing_tests] == ["tests/test_calc.py::test_forever"]
    assert tests.tests.passed == 2


@pytest.mark.bwrap
async def test_a_project_with_pytest_timeout_keeps_its_own_limits(bwrap_settings, tmp_path):
    repo = write_tree(tmp_path / "repo", {
        "requirements.txt": "pytest-timeout\n",
        "pytest.ini": "[pytest]\ntimeout = 30\n",
        "tests/test_slow.py": "import time\n\n\ndef test_slow():\n    time.sleep(2)\n",
        **_config("test_timeout_s: 1\n"),
    })
    async with open_sandbox(settings_for("bwrap", memory_mb=1024, pids=256), repo) as box:
        report = await box.check(repo)
    assert report.check("tests").status == CheckStatus.PASSED, report.summary()  # 2 s > our 1 s, < its 30 s


@pytest.mark.bwrap
async def test_the_check_limit_names_a_hanging_go_test(bwrap_settings, tmp_path):
    if shutil.which("go") is None:
        pytest.skip("go is not installed on this host")
    repo = write_tree(tmp_path / "go", {
        "go.mod": "module example.com/hang\n\ngo 1.19\n",
        "hang_test.go": ('package hang\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
                         "func TestQuick(t *testing.T) {}\n\nfunc TestForever(t *testing.T) {\n\ttime.Sleep(time.Hour)\n}\n"),
        **_config("check_timeout_s: 20\n"),
    })
    async with open_sandbox(settings_for("bwrap", memory_mb=2048, pids=256), repo) as box:
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.TIMEOUT
    assert [f.test_id for f in tests.failing_tests] == ["example.com/hang.TestForever"]
    assert report.pass_rate_reason == "the tests timed out after 20 s in example.com/hang.TestForever"


@pytest.mark.bwrap
async def test_a_parametrized_test_whose_cases_all_hang_costs_one_limit(bwrap_settings, tmp_path):
    """With the default limit of 60 s, nine hanging cases come back in about one limit, not nine."""
    repo = write_tree(tmp_path / "repo", BITCOUNT)
    started = time.monotonic()
    async with open_sandbox(settings_for("bwrap", timeout_s=300.0), repo) as box:
        assert box.plan.test_timeout_s == 60
        report = await box.check(repo)
    elapsed = time.monotonic() - started
    tests = report.check("tests")
    assert tests.tests.model_dump() == {"passed": 1, "failed": 9, "errors": 0, "skipped": 0}, report.summary()
    first, *rest = tests.failing_tests
    assert first.test_id == "test_bitcount.py::test_bitcount[input_data0-7]"
    assert "longer than its limit of 60 s" in first.message
    assert len(rest) == 8 and all("not run: the case test_bitcount.py::test_bitcount[input_data0-7]" in f.message
                                  for f in rest)
    assert elapsed < 90, f"the check took {elapsed:.0f} s"
