"""The evaluation harness: the full cycle on a suite of tasks, per model, so a user can pick a model.

A suite is a folder of tasks; a task is a folder holding a small program, its tests, and `task.md`
(the first line is the title, the rest the body, as in an issue). An optional `fix.json` is the
reference fix in the generator's Proposal format: the suite's self-check uses it, and it never enters
the repository the model sees (nor does task.md). Each task is copied into a fresh git repository and
the cycle runs on it in the sandbox as a dry run (no branch is left behind), K times per model. The
report gives solve rate, mean iterations, tokens and wall time per task and per model.

The project ships a suite of its own (`bot/runs/suite/`, twelve buggy Python programs).
"""

from __future__ import annotations

import shutil
import statistics
import time
import uuid
from collections import defaultdict
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError

from bot.config import Settings
from bot.events import EventBus
from bot.llm.client import ModelClient
from bot.records import EpisodeStatus, Proposal, Task
from bot.store import Store
from bot.workspace import run_git

if TYPE_CHECKING:
    from bot.cycle.episode import EpisodeResult

TASK_FILE = "task.md"
FIX_FILE = "fix.json"
NOT_COPIED = {TASK_FILE, FIX_FILE, "__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache"}


class EvalError(Exception):
    """The suite cannot be run: a bad suite folder, or no model server to run it with."""


class SuiteTask(BaseModel):
    name: str
    path: Path
    task: Task
    reference_fix: Proposal | None = None


class EvalAttempt(BaseModel):
    task: str
    model: str
    run: int  # 1..K
    status: str  # the episode's status, or "error"
    solved: bool
    iterations: int
    tokens: int
    wall_s: float
    best_reward: float | None = None
    episode_id: str | None = None
    error: str | None = None


class EvalRow(BaseModel):
    """Aggregates of one model on one task (task "*" for all tasks)."""

    model: str
    task: str
    runs: int
    solve_rate: float
    mean_iterations: float
    mean_tokens: float
    mean_wall_s: float


class EvalReport(BaseModel):
    run_id: str
    suite: str
    models: list[str]
    runs_per_task: int
    attempts: list[EvalAttempt] = Field(default_factory=list)
    per_task: list[EvalRow] = Field(default_factory=list)
    per_model: list[EvalRow] = Field(default_factory=list)

    @property
    def best_model(self) -> str | None:
        """Highest solve rate, then fewest tokens, then least time."""
        if not self.per_model:
            return None
        return min(self.per_model, key=lambda r: (-r.solve_rate, r.mean_tokens, r.mean_wall_s)).model


# --- the suite -----------------------------------------------------------------------------------


def builtin_suite_dir() -> Path:
    return Path(str(files("bot.runs") / "suite"))


def parse_task_file(text: str, *, name: str) -> Task:
    text = text.strip()
    if not text:
        raise EvalError(f"{name}/{TASK_FILE} is empty: its first line is the task's title")
    title, _, body = text.partition("\n")
    return Task(title=title.strip().lstrip("#").strip(), body=body.strip(), source=f"eval:{name}", repo=f"eval/{name}")


def load_suite(suite_dir: Path, *, only: list[str] | None = None) -> list[SuiteTask]:
    """The suite's tasks by name; `only` keeps the named ones (an unknown name is an error)."""
    if not suite_dir.is_dir():
        raise EvalError(f"{suite_dir} is not a folder: a suite is a folder of task folders, each with {TASK_FILE}")
    tasks = []
    for folder in sorted(p for p in suite_dir.iterdir() if p.is_dir() and (p / TASK_FILE).is_file()):
        task = parse_task_file((folder / TASK_FILE).read_text(encoding="utf-8"), name=folder.name)
        fix = None
        if (folder / FIX_FILE).is_file():
            try:
                fix = Proposal.model_validate_json((folder / FIX_FILE).read_text(encoding="utf-8"))
            except ValidationError as exc:
                raise EvalError(f"{folder / FIX_FILE} is not a Proposal (docs/contracts.md): {exc.errors()[0]['msg']}") from exc
        tasks.append(SuiteTask(name=folder.name, path=folder, task=task, reference_fix=fix))
    if not tasks:
        raise EvalError(f"no tasks in {suite_dir}: a task is a folder holding {TASK_FILE}, the program and its tests")
    if only:
        unknown = sorted(set(only) - {t.name for t in tasks})
        if unknown:
            raise EvalError(f"no task named {', '.join(unknown)} in {suite_dir} (there are: {', '.join(t.name for t in tasks)})")
        tasks = [t for t in tasks if t.name in only]
    return tasks


def materialize(task: SuiteTask, dest: Path) -> Path:
    """A fresh git repository at `dest` with the task's program and tests (not task.md, not fix.json)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(task.path, dest, ignore=lambda _, names: [n for n in names if n in NOT_COPIED])
    run_git(["init", "-q", "-b", "main"], dest)
    run_git(["add", "-A"], dest)
    run_git(["commit", "-q", "-m", f"eval task {task.name}"], dest)
    return dest


# --- running -------------------------------------------------------------------------------------


def _row(model: str, task: str, attempts: list[EvalAttempt]) -> EvalRow:
    return EvalRow(
        model=model, task=task, runs=len(attempts),
        solve_rate=sum(a.solved for a in attempts) / len(attempts),
        mean_iterations=statistics.fmean(a.iterations for a in attempts),
        mean_tokens=statistics.fmean(a.tokens for a in attempts),
        mean_wall_s=statistics.fmean(a.wall_s for a in attempts),
    )


def summarize(report: EvalReport) -> EvalReport:
    by_pair: dict[tuple[str, str], list[EvalAttempt]] = defaultdict(list)
    by_model: dict[str, list[EvalAttempt]] = defaultdict(list)
    for a in report.attempts:
        by_pair[(a.model, a.task)].append(a)
        by_model[a.model].append(a)
    report.per_task = [_row(m, t, rows) for (m, t), rows in by_pair.items()]
    report.per_model = [_row(m, "*", rows) for m, rows in by_model.items()]
    return report


async def run_eval(
    settings: Settings,
    llm: ModelClient,
    store: Store | None,
    suite: list[SuiteTask],
    *,
    work_dir: Path,
    models: list[str] | None = None,
    runs: int = 1,
    max_iterations: int | None = None,
    suite_name: str = "suite",
    bus: EventBus | None = None,
) -> EvalReport:
    """Run every task `runs` times per model (the generator model; the reviewers stay as configured).
    Learning is left out: each attempt measures the model alone."""
    from bot.cycle.loop import CycleRequest  # the cycle pulls in the sandbox; import it when needed
    from bot.cycle.episode import EpisodeRunner, ServerUnavailable, check_models

    if runs < 1:
        raise EvalError("--runs must be at least 1")
    models = list(dict.fromkeys(models or [settings.generator_model]))
    run_id = f"eval-{uuid.uuid4().hex[:12]}"
    if store is not None:
        store.create_run(run_id, kind="eval", repo=suite_name,
                         params={"models": models, "runs": runs, "tasks": [t.name for t in suite]})
    report = EvalReport(run_id=run_id, suite=suite_name, models=models, runs_per_task=runs)
    per_model = {m: settings.model_copy(update={"generator_model": m, "generator_models": [], "ensemble_models": [],
                                                "ensemble_size": 1}) for m in models}
    episode_number = 0
    try:
        for model_settings in per_model.values():
            await check_models(llm, model_settings)
        for task in suite:
            repo_dir = materialize(task, work_dir / task.name)
            for model, model_settings in per_model.items():
                runner = EpisodeRunner(model_settings, llm, store=store, bus=bus, learning=False)
                for k in range(1, runs + 1):
                    episode_number += 1
                    request = CycleRequest(
                        run_id=run_id, episode_number=episode_number, repo_dir=repo_dir, repo=task.task.repo,
                        task=task.task, max_iterations=max_iterations, dry_run=True, kind="eval",
                    )
                    started = time.perf_counter()
                    outcome = await runner.run(request, owns_run=False)
                    report.attempts.append(_attempt(outcome, request.episode_id, task.name, model, k,
                                                    wall_s=time.perf_counter() - started))
    except ServerUnavailable as exc:
        if store is not None:
            store.finish_run(run_id, "failed")
        raise EvalError(str(exc)) from exc
    if store is not None:
        store.finish_run(run_id, "completed")
    return summarize(report)


def _attempt(outcome: EpisodeResult, episode_id: str, task_name: str, model: str, run: int, *, wall_s: float) -> EvalAttempt:
    if outcome.error is not None or outcome.episode is None:
        return EvalAttempt(task=task_name, model=model, run=run, status="error", solved=False, iterations=0,
                           tokens=sum(c.prompt_tokens + c.completion_tokens for c in outcome.error_calls),
                           wall_s=wall_s, episode_id=episode_id, error=outcome.error)
    episode = outcome.episode
    rewards = [r.reward.value for r in episode.iterations if r.reward]
    return EvalAttempt(
        task=task_name, model=model, run=run, status=episode.status.value,
        solved=episode.status is EpisodeStatus.APPROVED,
        iterations=max((r.number for r in episode.iterations), default=0),
        tokens=episode.metrics.tokens_used, wall_s=wall_s,
        best_reward=max(rewards) if rewards else None, episode_id=episode.episode_id,
    )


def render_report(report: EvalReport) -> str:
    lines = [f"eval {report.run_id}: suite {report.suite}, {len(report.models)} model(s), "
             f"{report.runs_per_task} run(s) per task"]
    header = f"  {'model':<28} {'task':<16} {'runs':>4} {'solved':>7} {'iter':>5} {'tokens':>8} {'wall s':>7}"
    lines.append(header)
    for row in sorted(report.per_task, key=lambda r: (r.model, r.task)) + report.per_model:
        lines.append(f"  {row.model:<28} {row.task if row.task != '*' else 'ALL':<16} {row.runs:>4} "
                     f"{row.solve_rate:>7.2f} {row.mean_iterations:>5.1f} {row.mean_tokens:>8.0f} {row.mean_wall_s:>7.1f}")
    if len(report.models) > 1 and report.best_model:
        lines.append(f"best model for this suite: {report.best_model}")
    errors = [a for a in report.attempts if a.error]
    for a in errors:
        lines.append(f"  error in {a.task} ({a.model}, run {a.run}): {a.error}")
    return "\n".join(lines)
