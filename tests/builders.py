"""Test records as the cycle writes them: tasks' proposals, iterations and episodes, saved through the Store.

The one place tests build IterationRecord and Episode objects: `iteration` and `episode` fill what a
test does not care about, and take any other field of the record as a keyword (`guidance_in=[...]`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.records import (
    Change,
    ChangeType,
    Edit,
    Episode,
    EpisodeStatus,
    GuidanceEntry,
    IterationRecord,
    IterationStatus,
    LLMCall,
    Proposal,
    Reward,
    Rubric,
    Task,
    Verdict,
)
from bot.roles.generator import NO_PREVIOUS
from bot.roles.prompting import load_prompt, render_guidance, render_task
from bot.store import Store
from sandbox.reports import CheckReport

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def proposal(path: str, search: str, replace: str, summary: str | None = None) -> Proposal:
    return Proposal(
        summary=summary or f"{path}: {search.strip()} -> {replace.strip()}",
        changes=[Change(file_path=path, change_type=ChangeType.UPDATE, edits=[Edit(search=search, replace=replace)])],
    )


def generator_messages(task: Task, context: str, guidance: list[GuidanceEntry]) -> list[dict[str, str]]:
    """The generator's chat messages, rendered from its packaged prompt exactly as bot/roles/generator.py does."""
    return load_prompt("generator").render(task=render_task(task), context=context, guidance=render_guidance(guidance),
                                           previous=NO_PREVIOUS)


def iteration(
    run_id: str,
    episode_id: str,
    number: int,
    *,
    reward: float | Reward | None,
    model: str = "gen-a",
    candidate: int = 0,
    prop: Proposal | None = None,
    messages: list[dict[str, str]] | None = None,
    rubric: Rubric | None = None,
    at: datetime = T0,
    status: IterationStatus | None = None,
    extra_calls: list[LLMCall] | None = None,
    pass_rate: float | None = None,
    **fields: Any,
) -> IterationRecord:
    """An attempt scored `reward` (None: it failed before scoring; a Reward: kept as it is), approved from
    0.75 unless `status` says."""
    value = reward.value if isinstance(reward, Reward) else reward
    approved = value is not None and value >= 0.75
    if status is None:
        status = IterationStatus.FAILED if value is None else (IterationStatus.APPROVED if approved else IterationStatus.REJECTED)
    if value is not None and not isinstance(reward, Reward):
        reward = Reward(value=value, pass_rate=value if pass_rate is None else pass_rate, rubric_score=value,
                        verdict=Verdict.APPROVED if status is IterationStatus.APPROVED else Verdict.REJECTED)
    record = dict(
        run_id=run_id, episode_id=episode_id, number=number, candidate=candidate, proposal_id="p" * 12,
        status=status, model=model, started_at=at, finished_at=at + timedelta(seconds=5),
        proposal=prop, diff=f"--- diff {number}.{candidate}\n" if prop else "",
        rubric=rubric,
        reward=reward,
        llm_calls=[LLMCall(role="generator", model=model, prompt_tokens=100, completion_tokens=20), *(extra_calls or [])],
        generator_messages=messages or [],
        check_report=None if value is None else CheckReport(backend="bwrap", pass_rate=value if pass_rate is None else pass_rate),
    )
    return IterationRecord(**{**record, **fields})


def episode(
    run_id: str,
    episode_id: str,
    task: Task,
    iterations: list[IterationRecord],
    *,
    status: EpisodeStatus,
    number: int = 1,
    at: datetime = T0,
    **fields: Any,
) -> Episode:
    """An episode over these iterations, its outcomes naming the best-rewarded one."""
    best = max((r for r in iterations if r.reward), key=lambda r: r.reward.value, default=None)
    outcomes = {}
    if best is not None:
        outcomes = {"best_iteration": best.number, "best_candidate": best.candidate, "best_reward": best.reward.value,
                    "best_diff": best.diff}
    record = dict(
        run_id=run_id, episode_id=episode_id, episode_number=number, status=status, task=task,
        context={"repo": task.repo}, outcomes=outcomes, iterations=iterations, started_at=at,
        finished_at=at + timedelta(minutes=1),
    )
    return Episode(**{**record, **fields})


def save_episode(
    store: Store,
    run_id: str,
    episode_id: str,
    task: Task,
    iterations: list[IterationRecord],
    *,
    status: EpisodeStatus,
    number: int = 1,
    kind: str = "cli",
    at: datetime = T0,
) -> Episode:
    """`episode(...)` saved, with its run created first."""
    store.create_run(run_id, kind=kind, repo=task.repo)
    saved = episode(run_id, episode_id, task, iterations, status=status, number=number, at=at)
    store.save_episode(saved)
    return saved
