"""The shipped suite checks itself (tests fail before the reference fix, pass after); the eval harness
runs the real cycle in the bubblewrap sandbox with the model faked at the HTTP level."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.edits import apply_changes
from bot.runs.eval import EvalError, builtin_suite_dir, load_suite, materialize, render_report, run_eval
from bot.store import Store
from sandbox.config import SandboxSettings

SUITE = load_suite(builtin_suite_dir())
GEN, DISC = "qwen2.5-coder:7b", "qwen2.5:7b"
GOOD_RUBRIC = {"coverage": 0.9, "accuracy": 0.95, "coherence": 0.9, "formatting": 0.9, "issues": [], "comments": ["fine"]}


def pytest_in(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo,
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})


def test_the_suite_has_at_least_ten_tasks_each_with_a_reference_fix():
    assert len(SUITE) >= 10
    for task in SUITE:
        assert task.reference_fix is not None and task.reference_fix.changes, task.name
        assert task.task.title and task.task.body, task.name
        assert list((task.path / "tests").glob("test_*.py")), task.name


@pytest.mark.parametrize("task", SUITE, ids=[t.name for t in SUITE])
def test_suite_task_fails_before_and_passes_after_its_reference_fix(task, tmp_path):
    repo = materialize(task, tmp_path / task.name)
    assert not (repo / "task.md").exists() and not (repo / "fix.json").exists()  # the answer stays out

    before = pytest_in(repo)
    assert before.returncode == 1, before.stdout + before.stderr  # tests ran and some failed
    assert " failed" in before.stdout

    apply_changes(repo, task.reference_fix.changes)
    after = pytest_in(repo)
    assert after.returncode == 0, after.stdout + after.stderr


def test_bad_suites_are_clear_errors(tmp_path):
    with pytest.raises(EvalError, match="not a folder"):
        load_suite(tmp_path / "missing")
    with pytest.raises(EvalError, match="no tasks in"):
        load_suite(tmp_path)
    (tmp_path / "t1").mkdir()
    (tmp_path / "t1" / "task.md").write_text("# Fix it\n")
    (tmp_path / "t1" / "fix.json").write_text('{"summary": "x", "changes": [{"file_path": "a.py", "change_type": "update"}]}')
    with pytest.raises(EvalError, match="fix.json is not a Proposal"):
        load_suite(tmp_path)
    with pytest.raises(EvalError, match="no task named nope"):
        load_suite(builtin_suite_dir(), only=["nope"])


@pytest.mark.bwrap
async def test_eval_runs_the_cycle_in_the_sandbox_and_reports_solve_rate(tmp_path, fake_ollama):
    fake_ollama.pull(GEN, DISC)
    settings = Settings(
        _env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data", max_iterations=2,
        sandbox=SandboxSettings(_env_file=None, backend="bwrap"),  # the shared tool cache
    )
    tasks = load_suite(builtin_suite_dir(), only=["leapyear", "wordfreq"])
    for task in tasks:  # the model answers each task with its reference fix
        fake_ollama.queue("generator", task.reference_fix)
    fake_ollama.always("discriminator", GOOD_RUBRIC)
    store = Store.open(settings.database_url)

    report = await run_eval(settings, fake_ollama.llm(), store, tasks, work_dir=tmp_path / "work", suite_name="builtin")

    assert [(a.task, a.status, a.solved, a.iterations) for a in report.attempts] == [
        ("leapyear", "approved", True, 1), ("wordfreq", "approved", True, 1)]
    (overall,) = report.per_model
    assert (overall.model, overall.runs, overall.solve_rate, overall.mean_iterations) == (GEN, 2, 1.0, 1.0)
    assert overall.mean_tokens > 0 and overall.mean_wall_s > 0
    assert {r.task: r.solve_rate for r in report.per_task} == {"leapyear": 1.0, "wordfreq": 1.0}
    # the sandbox really ran the task's tests on the fixed program
    episodes = store.list_episodes(report.run_id)
    reports = [e.iterations[0].check_report for e in episodes]
    assert all(r.backend == "bwrap" and r.pass_rate == 1.0 and r.check("tests").tests.passed >= 2 for r in reports)
    assert store.get_run(report.run_id).kind == "eval" and store.get_run(report.run_id).status == "completed"
    text = render_report(report)
    assert "leapyear" in text and "1.00" in text


@pytest.mark.bwrap
async def test_eval_compares_models_and_names_the_best(tmp_path, fake_ollama):
    fake_ollama.pull("good:1b", "bad:1b", DISC)
    settings = Settings(
        _env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data", max_iterations=1,
        sandbox=SandboxSettings(_env_file=None, backend="bwrap"),  # the shared tool cache
    )
    (task,) = load_suite(builtin_suite_dir(), only=["leapyear"])
    wrong = {"summary": "noop", "changes": [{"file_path": "leapyear.py", "change_type": "update", "new_content": None,
             "edits": [{"search": "    return year % 4 == 0", "replace": "    return year % 2 == 0"}]}]}
    fake_ollama.queue("generator", task.reference_fix, wrong)  # models run in order: good, then bad
    fake_ollama.always("discriminator", GOOD_RUBRIC)

    report = await run_eval(settings, fake_ollama.llm(), None, [task], work_dir=tmp_path / "w", models=["good:1b", "bad:1b"])

    rates = {r.model: r.solve_rate for r in report.per_model}
    assert rates == {"good:1b": 1.0, "bad:1b": 0.0}
    assert report.best_model == "good:1b"
    assert [r["model"] for r in fake_ollama.requests_for("generator")] == ["good:1b", "bad:1b"]


async def test_eval_without_the_models_pulled_says_which(tmp_path, fake_ollama):
    fake_ollama.pull(DISC)
    settings = Settings(_env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data")
    with pytest.raises(EvalError, match="ollama pull missing:7b"):
        await run_eval(settings, fake_ollama.llm(), None, SUITE[:1], work_dir=tmp_path / "w", models=["missing:7b"])
