"""One episode, run the one way every entry runs it: `aura-sicd improve`, the GitHub job, training, eval.

    prepare (learning: the generator model, memory and pattern guidance) → Cycle.run → finish the run
    → learn (an approved change becomes a pattern)

Every part goes through the caller's `StepRunner`, so in a durable job each is a recorded step and a
resumed job neither prepares nor learns twice. What differs between entries is data: whether the run
holds this one episode (CLI, GitHub) or many (training, eval), whether learning is used (not in eval,
which measures a model alone), and the guidance each adds.

A model server that fails mid-episode ends the episode, not the caller: the result carries the error
and the episode as recorded so far. A server that is down or lacks a model (`ServerUnavailable`) is
raised, since every further episode would fail the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from bot.config import Settings
from bot.cycle.loop import Cycle, CycleRequest, SandboxOpener, StepRunner, run_inline
from bot.events import EpisodePrepared, EventBus
from bot.learning.bandit import ModelBandit
from bot.learning.patterns import OllamaEmbedder
from bot.learning.prepare import Preparation, after_episode, generator_models, prepare_episode
from bot.llm.client import LLMError, ModelClient, ModelNotPulled, RoleModel, ServerUnreachable
from bot.records import Episode, LLMCall

ServerUnavailable = (ServerUnreachable, ModelNotPulled)


def required_models(settings: Settings) -> list[str]:
    """Every model a run with these settings may call, each once, in the order they are first needed."""
    return list(dict.fromkeys(m for models in models_by_role(settings).values() for m in models))


def models_by_role(settings: Settings) -> dict[str, list[str]]:
    ensemble = [spec.partition("@")[0] for spec in settings.ensemble_models]
    return {
        "generator": [m for m in dict.fromkeys([*generator_models(settings), *ensemble]) if m],
        "discriminator": [settings.discriminator_model],
        "agitator": [settings.agitator_model],
    }


async def check_models(llm: ModelClient, settings: Settings) -> None:
    """Raise ModelNotPulled (or ServerUnreachable) before any work starts, naming what is missing.
    Roles served by the same client are checked with one listing."""
    by_client: dict[int, tuple[RoleModel, list[str]]] = {}
    for role, models in models_by_role(settings).items():
        client = llm.for_role(role)
        by_client.setdefault(id(client), (client, []))[1].extend(models)
    for client, models in by_client.values():
        await client.ensure_models(dict.fromkeys(models))


class EpisodeResult(BaseModel):
    episode: Episode | None  # None only when the model server failed before anything was recorded
    preparation: Preparation
    error: str | None = None  # the model server failed mid-episode
    error_calls: list[LLMCall] = Field(default_factory=list)  # the model calls made before that failure
    pattern_recorded: bool = False

    @property
    def status(self) -> str:
        """The run's status: the episode's, or "error"."""
        if self.error is not None or self.episode is None:
            return "error"
        return self.episode.status.value


@dataclass
class EpisodeRunner:
    settings: Settings
    llm: ModelClient
    store: Any | None = None  # bot.store.Store; eval may run without one
    bus: EventBus | None = None
    step: StepRunner = run_inline
    sandbox_opener: SandboxOpener | None = None
    learning: bool = True  # prepare from and add to what was learned on the repository
    bandit: ModelBandit | None = None
    embedder: OllamaEmbedder | None = None
    learn_from_dry_runs: bool = False  # training keeps the patterns of its dry runs; `improve --dry-run` does not
    run_params: dict[str, Any] = field(default_factory=dict)

    async def run(self, request: CycleRequest, *, owns_run: bool = True) -> EpisodeResult:
        """One episode of `request`, its guidance after what learning adds. With `owns_run` the run holds
        this episode alone: it is created before the episode and finished after it."""
        if request.repo != request.repo_name:
            request = request.model_copy(update={"repo": request.repo_name})
        if owns_run and self.store is not None:
            self.store.create_run(request.run_id, kind=request.kind, repo=request.repo, params=self.run_params)
        prepared: Preparation = await self.step("prepare", self.prepare, request)
        settings = self.settings.model_copy(update={"generator_model": prepared.generator_model})
        if prepared.edit_format:  # the bandit's format for this model beats the settings' choice
            settings.edit_formats = {prepared.generator_model: prepared.edit_format, **settings.edit_formats}
        if self.bus is not None:
            await self.bus.emit(EpisodePrepared(
                run_id=request.run_id, episode_id=request.episode_id, generator_model=prepared.generator_model,
                model_choices=len(generator_models(self.settings)) if self.learning else 1,
                memory_entries=prepared.memory_entries, pattern_examples=prepared.pattern_examples,
            ))
        request = request.model_copy(update={"guidance": [*prepared.guidance, *request.guidance]})
        cycle = Cycle(settings, self.llm, store=self.store, bus=self.bus, step=self.step,
                      sandbox_opener=self.sandbox_opener)
        try:
            episode = await cycle.run(request)
        except LLMError as exc:
            if owns_run:
                await self.step("finish-run", self.finish_run, request.run_id, "error")
            if isinstance(exc, ServerUnavailable):
                raise
            recorded = self.store.get_episode(request.run_id, request.episode_id) if self.store is not None else None
            return EpisodeResult(episode=recorded, preparation=prepared, error=str(exc), error_calls=exc.calls)
        except Exception:  # the workspace, the sandbox or git failed: the run ends in error, the caller says why
            if owns_run:
                await self.step("finish-run", self.finish_run, request.run_id, "error")
            raise
        if owns_run:
            await self.step("finish-run", self.finish_run, request.run_id, episode.status.value)
        learned = False
        if self.learning and (self.learn_from_dry_runs or not request.dry_run):
            learned = await self.step("learn", self.learn, episode)
        return EpisodeResult(episode=episode, preparation=prepared, pattern_recorded=learned)

    # --- the steps ---------------------------------------------------------------------------------

    async def prepare(self, request: CycleRequest) -> Preparation:
        if not self.learning or self.store is None:
            return Preparation(generator_model=self.settings.generator_model, guidance=[])
        return await prepare_episode(self.settings, self.store, request.repo, request.task,
                                     bandit=self.bandit, embedder=self.embedder)

    async def finish_run(self, run_id: str, status: str) -> None:
        if self.store is not None:
            await asyncio.to_thread(self.store.finish_run, run_id, status)

    async def learn(self, episode: Episode) -> bool:
        if self.store is None:
            return False
        return await asyncio.to_thread(after_episode, self.store, episode)
