"""The pattern library: approved proposals (task, diff, reward), shown to the generator as examples.

After an approved episode its task, diff and reward are kept (`record_pattern`). For a new task on the
same repository the most similar patterns are found (`similar_patterns`) by cosine similarity of Ollama
embeddings when `AURA_EMBEDDING_MODEL` is set, by BM25 over the task texts otherwise (and whenever the
embedding server fails: examples are a help, never a reason for a job to fail). Patterns never cross
repositories. The library is exported and imported as JSONL (`PatternRecord`, one per line).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import httpx
import ollama
from pydantic import BaseModel, ValidationError

from bot.learning.lexical import similarities
from bot.records import Episode, EpisodeStatus, GuidanceEntry, IterationRecord, Task, utcnow
from bot.store import Store, StoreError
from bot.store.learning import Pattern, PatternRecord

log = logging.getLogger(__name__)

SCAN_LIMIT = 300  # newest patterns of a repository compared per query
EXAMPLE_DIFF_CHARS = 2500  # a diff longer than this is cut in the example


class PatternHit(BaseModel):
    pattern: Pattern
    similarity: float
    method: str  # "embedding" or "lexical"


class OllamaEmbedder:
    """Embeddings from Ollama's /api/embed."""

    def __init__(self, host: str, model: str, *, timeout_s: float = 60.0, client: ollama.AsyncClient | None = None):
        self.model = model
        self._client = client or ollama.AsyncClient(host=host, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        response = await self._client.embed(model=self.model, input=list(texts))
        vectors = [list(v) for v in response.embeddings]
        if len(vectors) != len(texts):
            raise ValueError(f"{self.model} returned {len(vectors)} embeddings for {len(texts)} texts")
        return vectors


def _task_text(title: str, body: str) -> str:
    return f"{title}\n\n{body}".strip()


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def _embed_or_none(embedder: OllamaEmbedder | None, texts: Sequence[str]) -> list[list[float]] | None:
    if embedder is None or not texts:
        return None
    try:
        return await embedder.embed(texts)
    except (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError) as exc:
        log.warning("embedding with %s failed, using lexical similarity: %s", embedder.model, exc)
        return None


# --- writing -------------------------------------------------------------------------------------


def add_pattern(store: Store, record: PatternRecord, *, run_id: str | None = None, episode_id: str | None = None) -> int | None:
    """Keep one pattern; None when the repository opted out. The same episode is kept once."""
    if store.is_opted_out(record.repo):
        return None
    return store.save_pattern(record, run_id=run_id, episode_id=episode_id)


def record_pattern(store: Store, episode: Episode) -> int | None:
    """Keep an approved episode's accepted change as a pattern; None when there is nothing to keep
    (not approved, no diff) or the repository opted out."""
    if episode.status is not EpisodeStatus.APPROVED:
        return None
    diff = episode.outcomes.best_diff
    accepted = episode.chosen_iteration()
    if not diff and accepted is not None:
        diff = accepted.diff
    if not diff:
        return None
    repo = episode.task.repo or episode.context.repo
    if not repo:
        raise StoreError(f"episode {episode.episode_id} names no repository: set Task.repo")
    proposal = accepted.proposal if accepted else None
    record = PatternRecord(
        repo=repo, task_title=episode.task.title, task_body=episode.task.body,
        files=[c.file_path for c in proposal.changes] if proposal else [],
        summary=proposal.summary if proposal else "",
        diff=diff, reward=_reward_kept(episode, accepted),
        created_at=episode.finished_at or utcnow(),
    )
    return add_pattern(store, record, run_id=episode.run_id, episode_id=episode.episode_id)


# --- finding similar ones ------------------------------------------------------------------------


async def similar_patterns(
    store: Store, repo: str, task: Task, *, limit: int = 2, embedder: OllamaEmbedder | None = None
) -> list[PatternHit]:
    """The `limit` patterns of `repo` most similar to the task, most similar first (ties: higher
    reward first); patterns with no similarity at all are left out. An identical earlier task is kept:
    its approved change is the best example there is."""
    if limit <= 0:
        return []
    patterns = store.list_patterns(repo=repo, limit=SCAN_LIMIT)
    if not patterns:
        return []
    texts = [_task_text(p.task_title, p.task_body) for p in patterns]
    scores: list[float] | None = None
    method = "lexical"
    if embedder is not None:
        scores = await _embedding_scores(store, patterns, texts, task, embedder)
        method = "embedding" if scores is not None else "lexical"
    if scores is None:
        scores = similarities(task.text, [f"{t}\n{' '.join(p.files)}" for t, p in zip(texts, patterns, strict=True)])
    ranked = sorted(zip(patterns, scores, strict=True), key=lambda pair: (-pair[1], -pair[0].reward))
    return [PatternHit(pattern=p, similarity=s, method=method) for p, s in ranked[:limit] if s > 0]


async def _embedding_scores(
    store: Store, patterns: list[Pattern], texts: list[str], task: Task, embedder: OllamaEmbedder
) -> list[float] | None:
    """Cosine similarities; patterns without an embedding from this model get one now (and keep it)."""
    known = store.pattern_embeddings([p.id for p in patterns], embedder.model)
    missing = [i for i, p in enumerate(patterns) if p.id not in known]
    vectors = await _embed_or_none(embedder, [task.text, *(texts[i] for i in missing)])
    if vectors is None:
        return None
    query, fresh = vectors[0], vectors[1:]
    if missing:
        computed = {patterns[i].id: vector for i, vector in zip(missing, fresh, strict=True)}
        store.save_pattern_embeddings(embedder.model, computed)
        known.update(computed)
    return [max(0.0, _cosine(query, known[p.id])) for p in patterns]


def render_example(hit: PatternHit, *, max_diff_chars: int = EXAMPLE_DIFF_CHARS) -> str:
    p = hit.pattern
    diff = p.diff if len(p.diff) <= max_diff_chars else p.diff[:max_diff_chars] + "\n... [diff cut]\n"
    lines = [
        f"An approved change for a similar earlier task on this repository (reward {p.reward:.2f}); "
        "use it as an example of what works here, not as a change to repeat:",
        f"Task: {p.task_title}",
    ]
    if p.summary:
        lines.append(f"Change: {p.summary}")
    lines += ["Diff:", diff.rstrip()]
    return "\n".join(lines)


async def pattern_examples(
    store: Store, repo: str, task: Task, *, limit: int = 2, embedder: OllamaEmbedder | None = None
) -> list[GuidanceEntry]:
    """Similar approved changes as generator guidance, least similar first (prepend to the guidance)."""
    hits = await similar_patterns(store, repo, task, limit=limit, embedder=embedder)
    return [
        GuidanceEntry(source="memory", text=render_example(hit), path=hit.pattern.files[0] if len(hit.pattern.files) == 1 else None)
        for hit in reversed(hits)
    ]


# --- export and import ---------------------------------------------------------------------------


def export_patterns(store: Store, out: Path, *, repo: str | None = None) -> int:
    """Write the library (or one repository's part) as JSONL, oldest first; returns the count."""
    patterns = list(reversed(store.list_patterns(repo=repo)))
    try:
        with out.open("w", encoding="utf-8") as fh:
            for p in patterns:
                fh.write(PatternRecord.model_validate(p.model_dump()).model_dump_json() + "\n")
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc}") from exc
    return len(patterns)


def import_patterns(store: Store, source: Path, *, repo: str | None = None) -> tuple[int, int]:
    """Read JSONL written by `export_patterns`; `repo` files every pattern under that repository.
    Returns (imported, skipped because the repository opted out). A bad line stops the import before
    anything is written, naming the line."""
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StoreError(f"cannot read {source}: {exc}") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = PatternRecord.model_validate_json(line)
        except ValidationError as exc:
            raise StoreError(f"{source}:{number}: not a pattern record: {exc.errors(include_url=False)[0]['msg']}") from exc
        records.append(record.model_copy(update={"repo": repo}) if repo else record)
    imported = skipped = 0
    for record in records:
        if add_pattern(store, record) is None:
            skipped += 1
        else:
            imported += 1
    return imported, skipped


def _reward_kept(episode: Episode, accepted: IterationRecord | None) -> float:
    if episode.outcomes.best_reward is not None:
        return episode.outcomes.best_reward
    return accepted.reward.value if accepted is not None and accepted.reward is not None else 0.0
