"""Training runs: the cycle over a dataset of tasks for N epochs, lessons carried from epoch to epoch.

The seed's `train(dataset, epochs)`. Each episode's generator is given, before the task's own guidance:

1. pattern examples: approved changes of similar earlier tasks on the repository (`patterns.py`);
2. guidance memory: relevant human, review and approved-agitator advice (`memory.py`);
3. carried guidance: the coach's advice from this task's episode in the previous epoch when that one
   was not approved (memory keeps only approved runs' advice, but within one training run the last
   attempt's lesson is the most relevant one there is).

After an approved episode its change becomes a pattern. When several generator models are configured
(`AURA_GENERATOR_MODELS`), the bandit picks one per episode from the rewards so far. Every episode is
audited. The admin API's `POST /admin/training/start` calls `train`.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import BaseModel, Field

from bot.config import Settings
from bot.events import EventBus
from bot.learning.bandit import ModelBandit
from bot.learning.patterns import OllamaEmbedder
from bot.llm.client import ModelClient
from bot.records import Episode, EpisodeStatus, GuidanceEntry, Task
from bot.store import Store


class TrainingEpisode(BaseModel):
    epoch: int
    task: str
    episode_id: str
    episode_number: int
    model: str
    status: str
    best_reward: float | None = None
    iterations: int = 0
    tokens: int = 0
    memory_entries: int = 0  # guidance-memory entries given to the generator
    pattern_examples: int = 0
    carried_entries: int = 0  # guidance carried from the previous epoch
    error: str | None = None


class EpochSummary(BaseModel):
    epoch: int
    episodes: int
    approved: int
    solve_rate: float
    mean_best_reward: float | None
    mean_iterations: float
    tokens: int


class TrainingResult(BaseModel):
    run_id: str
    repo: str
    episodes: list[TrainingEpisode] = Field(default_factory=list)
    epochs: list[EpochSummary] = Field(default_factory=list)
    patterns_recorded: int = 0


class TrainingError(Exception):
    """A training run that cannot start or go on: bad parameters, no model server."""


def carried_guidance(episode: Episode | None) -> list[GuidanceEntry]:
    """The coach's advice of a previous episode of the same task, as lessons for the next one."""
    if episode is None:
        return []
    carried = []
    for record in episode.iterations:
        g = record.guidance_out
        if g is None:
            continue
        parts = [g.guidance, *(f"Focus on: {p}" for p in g.focus_points)]
        carried.append(GuidanceEntry(
            source="memory", iteration=None,
            text=f"From the previous epoch (attempt {record.number}, reward "
                 f"{record.reward.value if record.reward else 0:.2f}): " + "\n".join(parts),
        ))
    return carried


def summarize_epochs(episodes: list[TrainingEpisode]) -> list[EpochSummary]:
    summaries = []
    for epoch in sorted({e.epoch for e in episodes}):
        rows = [e for e in episodes if e.epoch == epoch]
        rewards = [e.best_reward for e in rows if e.best_reward is not None]
        approved = sum(1 for e in rows if e.status == EpisodeStatus.APPROVED.value)
        summaries.append(EpochSummary(
            epoch=epoch, episodes=len(rows), approved=approved, solve_rate=approved / len(rows),
            mean_best_reward=statistics.fmean(rewards) if rewards else None,
            mean_iterations=statistics.fmean(e.iterations for e in rows), tokens=sum(e.tokens for e in rows),
        ))
    return summaries


async def train(
    settings: Settings,
    llm: ModelClient,
    store: Store,
    dataset: list[Task],
    repo_dir: Path,
    epochs: int,
    *,
    run_id: str | None = None,
    repo: str | None = None,
    dry_run: bool = True,
    max_iterations: int | None = None,
    bus: EventBus | None = None,
    bandit: ModelBandit | None = None,
    embedder: OllamaEmbedder | None = None,
    on_episode: Callable[[TrainingEpisode], Awaitable[None] | None] | None = None,
) -> TrainingResult:
    """Run the cycle on every task of `dataset`, `epochs` times, in `repo_dir` (a git repository)."""
    from bot.cycle.loop import CycleRequest  # the cycle pulls in the sandbox; import it when needed
    from bot.cycle.episode import EpisodeRunner, ServerUnavailable, check_models, generator_models

    if epochs < 1:
        raise TrainingError("a training run needs at least one epoch")
    if not dataset:
        raise TrainingError("a training run needs at least one task")
    repo_name = repo or dataset[0].repo or Path(repo_dir).resolve().name
    run_id = run_id or f"train-{uuid.uuid4().hex[:12]}"
    bandit = bandit or ModelBandit(store, human_feedback_weight=settings.human_feedback_weight)
    if embedder is None and settings.embedding_model:
        embedder = OllamaEmbedder(settings.ollama_host, settings.embedding_model)
    store.create_run(run_id, kind="training", repo=repo_name, params={
        "epochs": epochs, "tasks": [t.title for t in dataset], "dry_run": dry_run, "models": generator_models(settings),
    })
    runner = EpisodeRunner(settings, llm, store=store, bus=bus, bandit=bandit, embedder=embedder, learn_from_dry_runs=True)
    result = TrainingResult(run_id=run_id, repo=repo_name)
    previous: dict[int, Episode] = {}  # task index -> its episode in the last epoch
    number = 0
    status = "failed"
    try:
        await check_models(llm, settings)
        for epoch in range(1, epochs + 1):
            for index, task in enumerate(dataset):
                number += 1
                task = task if task.repo else task.model_copy(update={"repo": repo_name})
                last = previous.get(index)  # an approved one's lessons are in memory already
                carried = carried_guidance(last) if last is not None and last.status is not EpisodeStatus.APPROVED else []
                request = CycleRequest(
                    run_id=run_id, episode_number=number, repo_dir=repo_dir, repo=repo_name, task=task,
                    guidance=carried, max_iterations=max_iterations, dry_run=dry_run, kind="training",
                )
                outcome = await runner.run(request, owns_run=False)
                prepared = outcome.preparation
                row = TrainingEpisode(
                    epoch=epoch, task=task.title, episode_id=request.episode_id, episode_number=number,
                    model=prepared.generator_model, status=outcome.status, error=outcome.error,
                    memory_entries=prepared.memory_entries, pattern_examples=prepared.pattern_examples,
                    carried_entries=len(carried),
                )
                episode = outcome.episode
                if episode is not None:
                    previous[index] = episode
                    rewards = [r.reward.value for r in episode.iterations if r.reward]
                    row.best_reward = max(rewards) if rewards else None
                    row.iterations = max((r.number for r in episode.iterations), default=0)
                    row.tokens = episode.metrics.tokens_used
                    result.patterns_recorded += outcome.pattern_recorded
                store.audit(
                    actor="training", action="training.episode", subject=f"{run_id}#{number} {task.title}",
                    decision=row.status, risk_score=None, run_id=run_id,
                    details=row.model_dump(mode="json", exclude={"task"}),
                )
                result.episodes.append(row)
                if on_episode is not None:
                    reported = on_episode(row)
                    if reported is not None:
                        await reported
        status = "completed"
    except ServerUnavailable as exc:
        raise TrainingError(str(exc)) from exc
    finally:
        store.finish_run(run_id, status)
        result.epochs = summarize_epochs(result.episodes)
    return result
