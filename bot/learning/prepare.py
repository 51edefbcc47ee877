"""What every entry into the cycle (CLI, GitHub job, training run) asks of the learning layer:
before an episode, the generator model (bandit) and the guidance learned on this repository (pattern
examples, memory); after it, the approved change kept as a pattern."""

from __future__ import annotations

from pydantic import BaseModel

from bot.config import Settings
from bot.learning.bandit import ModelBandit, format_arm
from bot.learning.memory import memory_guidance
from bot.learning.patterns import OllamaEmbedder, pattern_examples, record_pattern
from bot.records import Episode, EpisodeStatus, GuidanceEntry, Task
from bot.store import Store


class Preparation(BaseModel):
    generator_model: str
    edit_format: str | None = None  # the bandit's choice among AURA_EDIT_FORMAT_CHOICES; None: the settings'
    guidance: list[GuidanceEntry]  # pattern examples, then memory: older context before newer
    memory_entries: int = 0
    pattern_examples: int = 0


def generator_models(settings: Settings) -> list[str]:
    """The generator models the bandit chooses from, each once (the generator model when none is listed)."""
    return list(dict.fromkeys(settings.generator_models)) or [settings.generator_model]


async def prepare_episode(
    settings: Settings,
    store: Store,
    repo: str,
    task: Task,
    *,
    bandit: ModelBandit | None = None,
    embedder: OllamaEmbedder | None = None,
) -> Preparation:
    models = generator_models(settings)
    if len(models) > 1:
        bandit = bandit or ModelBandit(store, human_feedback_weight=settings.human_feedback_weight)
        model = bandit.choose(repo, "generator", models)
    else:
        model = models[0]
    edit_format = None
    formats = list(dict.fromkeys(settings.edit_format_choices))
    if len(formats) > 1:
        bandit = bandit or ModelBandit(store, human_feedback_weight=settings.human_feedback_weight)
        arm = bandit.choose(repo, "edit_format", [format_arm(model, f) for f in formats])
        edit_format = arm.rsplit("|", 1)[1]
    if embedder is None and settings.embedding_model:
        embedder = OllamaEmbedder(settings.ollama_host, settings.embedding_model)
    examples = await pattern_examples(store, repo, task, limit=settings.pattern_examples, embedder=embedder)
    memory = memory_guidance(store, repo, task, limit=settings.memory_limit)
    return Preparation(
        generator_model=model, edit_format=edit_format, guidance=[*examples, *memory], memory_entries=len(memory), pattern_examples=len(examples)
    )


def after_episode(store: Store, episode: Episode) -> bool:
    """Keep an approved change in the pattern library; True when one was recorded."""
    return episode.status is EpisodeStatus.APPROVED and record_pattern(store, episode) is not None
