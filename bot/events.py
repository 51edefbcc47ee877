"""In-process event bus: the cycle emits typed events; the CLI, GitHub progress comments and the dashboard listen."""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from bot.records import Episode, IterationRecord
from sandbox.reports import CheckReport

log = logging.getLogger(__name__)


class EpisodePrepared(BaseModel):
    """What learning chose for an episode, before its first attempt."""

    run_id: str
    episode_id: str
    generator_model: str
    model_choices: int  # generator models the bandit chose from (1: no choice)
    memory_entries: int
    pattern_examples: int


class IterationStarted(BaseModel):
    run_id: str
    episode_id: str
    number: int
    max_iterations: int
    candidate: int = 0
    model: str | None = None


class ChecksFinished(BaseModel):
    run_id: str
    episode_id: str
    number: int
    candidate: int
    report: CheckReport


class IterationCompleted(BaseModel):
    record: IterationRecord


class EpisodeCompleted(BaseModel):
    episode: Episode


Event = EpisodePrepared | IterationStarted | ChecksFinished | IterationCompleted | EpisodeCompleted
Handler = Callable[[Any], Awaitable[None] | None]


class EventBus:
    """Subscribers get events of one type; a failing subscriber is logged and never breaks the cycle."""

    def __init__(self) -> None:
        self._handlers: dict[type[BaseModel], list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[BaseModel], handler: Handler) -> Callable[[], None]:
        self._handlers[event_type].append(handler)
        return lambda: self._handlers[event_type].remove(handler)

    async def emit(self, event: BaseModel) -> None:
        for handler in list(self._handlers[type(event)]):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
