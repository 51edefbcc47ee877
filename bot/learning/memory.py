"""Guidance memory: what earlier runs on a repository learned, handed to the next job's generator.

The store's `guidance` table already holds every piece of advice given (the cycle writes the agitator's,
the GitHub layer writes review comments and human guidance). Memory is a selection over it:

- eligible: human and review entries always; agitator entries only from episodes that were approved
  and whose pull request was not closed unmerged (advice that led nowhere is not a lesson);
- relevant: by path (the entry's file is one the task names or mentions, or sits next to one) and by
  BM25 similarity between the entry and the task text; an entry with neither is left out;
- weighted: human 1.0, review 0.9, agitator 0.5, so people's advice outranks the model's own.

The selected entries come back as `GuidanceEntry(source="memory")`, least relevant first: the caller
prepends them to `CycleRequest.guidance` (oldest first), so when the prompt budget is tight the cycle
drops the weakest memories before anything else.
"""

from __future__ import annotations

from pydantic import BaseModel

from bot.learning.lexical import mentioned_paths, path_affinity, similarities
from bot.records import GuidanceEntry, Task
from bot.store import Store, StoredGuidance

SOURCE_WEIGHTS: dict[str, float] = {"human": 1.0, "review": 0.9, "agitator": 0.5}
SCAN_LIMIT = 1000  # newest guidance entries of a repository considered per selection
FORGET_RISK = 0.1  # the audited risk of forgetting one entry (CLI, admin API, `/aura forget`): advice can be given again


class MemoryHit(BaseModel):
    """One selected entry and why: `score` = source weight x (path affinity + text similarity)."""

    entry: StoredGuidance
    score: float
    path_score: float
    text_score: float


def task_paths(task: Task) -> set[str]:
    """The files a task is about: those it names explicitly and the paths its text mentions."""
    return set(task.files) | mentioned_paths(task.text)


def eligible_guidance(store: Store, repo: str, *, limit: int = SCAN_LIMIT) -> list[StoredGuidance]:
    """The repository's guidance entries memory may use, newest first (see the module docstring)."""
    entries = [g for g in store.list_guidance(repo, limit=limit) if g.source in SOURCE_WEIGHTS]
    agitator_episodes = {(g.run_id, g.episode_id) for g in entries if g.source == "agitator" and g.episode_id}
    approved: set[tuple[str, str]] = set()
    rejected_runs: set[str] = set()
    if agitator_episodes:
        approved = store.approved_episodes({episode_id for _, episode_id in agitator_episodes})
        rejected_runs = store.closed_unmerged_runs(repo)
    return [
        g
        for g in entries
        if g.source != "agitator" or ((g.run_id, g.episode_id) in approved and g.run_id not in rejected_runs)
    ]


def select_memory(store: Store, repo: str, task: Task, *, limit: int = 8) -> list[MemoryHit]:
    """The `limit` most relevant eligible entries for a task, best first; identical texts once."""
    if limit <= 0:
        return []
    entries = eligible_guidance(store, repo)
    if not entries:
        return []
    paths = task_paths(task)
    # the entry's path counts as part of its text: "src/app.py: ..." matches a task naming app.py
    text_scores = similarities(task.text, [f"{g.path or ''} {g.text}" for g in entries])
    hits: dict[str, MemoryHit] = {}
    for entry, text_score in zip(entries, text_scores, strict=True):
        path_score = path_affinity(entry.path, paths)
        if path_score == 0 and text_score == 0:
            continue
        hit = MemoryHit(
            entry=entry,
            score=SOURCE_WEIGHTS[entry.source] * (path_score + text_score),
            path_score=path_score,
            text_score=text_score,
        )
        key = " ".join(entry.text.split()).lower()
        if key not in hits or hit.score > hits[key].score:
            hits[key] = hit
    # best first; among equals the newer entry (entries come newest first, and sorted() is stable)
    return sorted(hits.values(), key=lambda h: -h.score)[:limit]


def memory_guidance(store: Store, repo: str, task: Task, *, limit: int = 8) -> list[GuidanceEntry]:
    """Selected memories as generator guidance, least relevant first (prepend to CycleRequest.guidance)."""
    return [
        GuidanceEntry(source="memory", **hit.entry.model_dump(include={"text", "path", "line", "author", "created_at"}))
        for hit in reversed(select_memory(store, repo, task, limit=limit))
    ]


def list_memory(store: Store, repo: str, *, limit: int = 50) -> list[StoredGuidance]:
    """What a maintainer sees: the entries memory may hand to the generator, newest first."""
    return eligible_guidance(store, repo)[:limit]


def forget(store: Store, repo: str, guidance_id: int, *, actor: str = "cli", risk_score: float | None = FORGET_RISK) -> bool:
    """Delete one memory entry of `repo` (an id of another repository is refused, as if unknown), and
    audit the decision. False when the repository has no entry with that id."""
    deleted = store.forget_guidance(guidance_id, repo=repo)
    store.audit(
        actor=actor,
        action="memory.forget",
        subject=f"{repo}#guidance-{guidance_id}",
        decision="deleted" if deleted else "not_found",
        risk_score=risk_score,
    )
    return deleted
