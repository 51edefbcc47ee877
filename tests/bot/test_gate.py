"""The gated check in the real bubblewrap sandbox: an attempt that fails its selected tests never reaches
the full suite; one that passes them does, and the full suite's report is the one judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cycle.baseline import Baseline, compare
from bot.cycle.gate import count_tests_run, gated_check
from bot.cycle.impact import select_tests
from bot.workspace import run_git
from sandbox import open_sandbox
from sandbox.box import backend_class
from sandbox.config import SandboxSettings
from sandbox.selection import TestSelection
from tests.repos import make_repo

SHOP = {
    "shop/__init__.py": "",
    "shop/price.py": "def net(gross, rate):\n    return round(gross / (1 + rate), 2)\n",
    "shop/words.py": "def shout(s):\n    return s.upper()\n",
    "tests/test_price.py": "from shop.price import net\n\n\ndef test_net():\n    assert net(119, 0.19) == 100\n",
    "tests/test_words.py": "from shop.words import shout\n\n\ndef test_shout():\n    assert shout('a') == 'A'\n",
    # a dependency no import shows: only the full suite sees it
    "tests/test_registry.py": "import importlib\n\n\ndef test_loaded_by_name():\n"
                              "    assert importlib.import_module('shop.' + 'price').net(2, 1) == 1\n",
    **{f"tests/test_other{i}.py": "def test_other():\n    assert True\n" for i in range(3)},
}
TASK = "net() should also accept a rate of zero"


class CountingBox:
    """The real sandbox, with a record of each check's selection (None: the full suite)."""

    def __init__(self, box):
        self.box = box
        self.runs: list[list[str] | None] = []

    async def check(self, workdir: Path, *, selection: TestSelection | None = None):
        self.runs.append(selection.paths if selection else None)
        return await self.box.check(workdir, selection=selection)


@pytest.fixture
def settings() -> SandboxSettings:
    settings = SandboxSettings(_env_file=None, backend="bwrap")
    reason = backend_class("bwrap").unavailable_reason(settings)
    if reason:
        pytest.skip(f"bwrap sandbox unavailable: {reason}")
    return settings


def attempt(repo: Path, price: str) -> str:
    (repo / "shop/price.py").write_text(price)
    return run_git(["diff"], repo)


async def check_attempts(repo: Path, settings: SandboxSettings, *prices: str):
    async with open_sandbox(settings, repo) as box:
        baseline = Baseline.of("base", await box.check(repo))
        out = []
        for price in prices:
            counting = CountingBox(box)
            diff = attempt(repo, price)
            selection = select_tests(repo, "python", diff, TASK, baseline)
            out.append((counting, await gated_check(counting, repo, selection, baseline, TASK), baseline))
            run_git(["checkout", "--", "."], repo)
        return out


async def test_a_failing_attempt_never_reaches_the_full_suite_and_a_passing_one_does(tmp_path, settings):
    repo = make_repo(tmp_path / "shop", SHOP)
    broken = "def net(gross, rate):\n    return gross * rate\n"
    right = "def net(gross, rate):\n    return round(gross / (1 + (rate or 0)), 2)\n"
    (failing, failed, baseline), (passing, passed, _) = await check_attempts(repo, settings, broken, right)

    assert failing.runs == [["tests/test_price.py"]]  # one run, the selection: never the full suite
    assert failed.impact.stopped_after_selection and failed.impact.full_run_s is None
    assert failed.report.selected_tests == ["tests/test_price.py"]
    assert compare(baseline, failed.report, TASK).new_failures == ["tests/test_price.py::test_net"]
    reasons = [t.reasons for t in failed.impact.selection.tests]
    assert reasons == [["imports shop/price.py", "named after shop/price.py"]]

    assert passing.runs == [["tests/test_price.py"], None]  # the selection, then the full suite
    assert not passed.impact.stopped_after_selection
    assert passed.impact.selected_tests_run == 1 and passed.impact.full_run_s is not None
    assert passed.report.selected_tests is None and count_tests_run(passed.report) == baseline.tests_run == 6
    assert not compare(baseline, passed.report, TASK).blocking


async def test_the_full_suite_catches_what_the_selection_cannot_see(tmp_path, settings):
    repo = make_repo(tmp_path / "shop", SHOP)
    # right for test_net, wrong for the test that loads the module by name
    odd = "def net(gross, rate):\n    return 100.0 if gross == 119 else -1\n"
    [(counting, gated, baseline)] = await check_attempts(repo, settings, odd)
    assert counting.runs == [["tests/test_price.py"], None]
    assert compare(baseline, gated.report, TASK).new_failures == ["tests/test_registry.py::test_loaded_by_name"]
    assert "Full suite" in gated.impact.summary()


async def test_in_the_cycle_the_wrong_fix_stops_at_its_selection_and_the_right_one_is_gated(tmp_path, fake_ollama):
    from bot.config import Settings
    from bot.cycle.loop import Cycle, CycleRequest
    from bot.records import EpisodeStatus, IterationStatus
    from tests.repos import CALC_FILES, CALC_TASK, DISC, GEN, GOOD_RUBRIC, RIGHT_FIX, WEAK_RUBRIC, WRONG_FIX

    fillers = {f"tests/test_other{i}.py": "def test_other():\n    assert True\n" for i in range(3)}
    repo = make_repo(tmp_path / "calc", {**CALC_FILES, **fillers})
    fake_ollama.pull(GEN, DISC)
    fake_ollama.queue("generator", WRONG_FIX, RIGHT_FIX)
    fake_ollama.queue("discriminator", WEAK_RUBRIC, GOOD_RUBRIC)
    fake_ollama.queue("agitator", {"guidance": "add must add", "focus_points": [], "improvement_plan": []})
    settings = Settings(_env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data", max_iterations=2,
                        sandbox=SandboxSettings(_env_file=None, backend="bwrap"), test_impact_min_suite_s=0)

    episode = await Cycle(settings, fake_ollama.llm()).run(CycleRequest(repo_dir=repo, task=CALC_TASK))

    assert episode.status is EpisodeStatus.APPROVED
    wrong, right = episode.iterations
    assert wrong.status is IterationStatus.REJECTED
    assert wrong.test_impact.stopped_after_selection and wrong.test_impact.full_run_s is None
    assert wrong.check_report.selected_tests == ["tests/test_calc.py"]
    assert wrong.comparison.still_failing_related == ["tests/test_calc.py::test_add"]
    assert right.status is IterationStatus.APPROVED
    assert right.test_impact.selected_tests_run == 2 and right.test_impact.full_run_s is not None
    assert right.check_report.selected_tests is None  # the verdict read the full suite's report
    assert right.check_report.check("tests").tests.passed == 5
    reasons = {t.path: t.reasons for t in right.test_impact.selection.tests}
    assert "imports calc.py" in reasons["tests/test_calc.py"]


class ScriptedBox:
    """Answers each check with the next report: for the gate's decisions alone."""

    def __init__(self, *reports):
        self.reports = list(reports)
        self.runs: list[list[str] | None] = []

    async def check(self, workdir, *, selection=None):
        self.runs.append(selection.paths if selection else None)
        return self.reports.pop(0)


def _report(passed: int, *, exit_code: int = 0, selected: list[str] | None = None):
    from sandbox.reports import CheckReport, CheckResult, CheckStatus, TestCounts

    status = CheckStatus.PASSED if exit_code == 0 else CheckStatus.FAILED
    tests = CheckResult(name="tests", command=["pytest"], status=status, exit_code=exit_code,
                        tests=TestCounts(passed=passed))
    return CheckReport(backend="scripted", checks=[tests], duration_s=1.0, selected_tests=selected)


def _selection():
    from bot.cycle.impact import SelectedTest, Selection

    return Selection(tests=[SelectedTest(path="tests/test_a.py", reasons=["imports a.py"])], out_of=10)


async def test_a_selection_that_collects_nothing_goes_on_to_the_full_suite(tmp_path):
    baseline = Baseline.of("base", _report(10))
    box = ScriptedBox(_report(0, exit_code=5, selected=["tests/test_a.py"]), _report(10))
    gated = await gated_check(box, tmp_path, _selection(), baseline, "task")
    assert box.runs == [["tests/test_a.py"], None]
    assert gated.impact.selected_tests_run == 0 and gated.report.selected_tests is None


async def test_a_box_that_cannot_narrow_runs_the_full_suite_once(tmp_path):
    box = ScriptedBox(_report(10))  # the sandbox ran the whole plan: selected_tests is None
    gated = await gated_check(box, tmp_path, _selection(), Baseline.of("base", _report(10)), "task")
    assert box.runs == [["tests/test_a.py"]]
    assert gated.impact.full_run_s == 1.0 and "cannot narrow" in gated.impact.note


async def test_without_a_baseline_the_full_suite_runs_at_once(tmp_path):
    box = ScriptedBox(_report(10))
    gated = await gated_check(box, tmp_path, _selection(), None, "task")
    assert box.runs == [None] and gated.impact.selected_run_s is None
    assert "No baseline" in gated.impact.note


async def test_a_small_suite_runs_whole_at_once(tmp_path):
    baseline = Baseline.of("base", _report(10))  # its full check took 1 s
    box = ScriptedBox(_report(10))
    gated = await gated_check(box, tmp_path, _selection(), baseline, "task", min_suite_s=30)
    assert box.runs == [None] and "takes 1 s on the base" in gated.impact.note
