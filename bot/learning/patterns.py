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
from datetime import datetime
from pathlib import Path

import httpx
import ollama
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from bot.learning.lexical import similarities
from bot.learning.retention import is_opted_out
from bot.records import Episode, EpisodeStatus, GuidanceEntry, Task, utcnow
from bot.store import Store, StoreError
from bot.store.tables import PatternRow

log = logging.getLogger(__name__)

SCAN_LIMIT = 300  # newest patterns of a repository compared per query
EXAMPLE_DIFF_CHARS = 2500  # a diff longer than this is cut in the example


class PatternRecord(BaseModel):
    """One pattern, as exported and imported (JSONL)."""

    repo: str
    task_title: str
    task_body: str = ""
    files: list[str] = Field(default_factory=list)
    summary: str = ""
    diff: str
    reward: float = Field(ge=0.0, le=1.0)
    created_at: datetime = Field(default_factory=utcnow)


class Pattern(PatternRecord):
    id: int
    run_id: str | None = None
    episode_id: str | None = None


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


def _pattern(row: PatternRow) -> Pattern:
    return Pattern(
        id=row.id, repo=row.repo, task_title=row.task_title, task_body=row.task_body, files=row.files.get("paths", []),
        summary=row.summary, diff=row.diff, reward=row.reward, created_at=row.created_at, run_id=row.run_id,
        episode_id=row.episode_id,
    )


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
    if is_opted_out(store, record.repo):
        return None
    values = {
        "repo": record.repo, "task_title": record.task_title, "task_body": record.task_body,
        "files": {"paths": record.files}, "summary": record.summary, "diff": record.diff, "reward": record.reward,
        "run_id": run_id, "episode_id": episode_id, "embedding_model": None, "embedding": None,
        "created_at": record.created_at,
    }
    with store.engine.execution_options(aura_write=True).begin() as connection:
        if run_id and episode_id:
            existing = connection.scalar(
                select(PatternRow.id).where(PatternRow.run_id == run_id, PatternRow.episode_id == episode_id)
            )
            if existing is not None:
                return existing
        return connection.execute(PatternRow.__table__.insert().values(values)).inserted_primary_key[0]


def record_pattern(store: Store, episode: Episode) -> int | None:
    """Keep an approved episode's accepted change as a pattern; None when there is nothing to keep
    (not approved, no diff) or the repository opted out."""
    if episode.status is not EpisodeStatus.APPROVED:
        return None
    diff = episode.outcomes.get("best_diff") or ""
    accepted = next(
        (r for r in episode.iterations if r.number == episode.outcomes.get("best_iteration")
         and r.candidate == episode.outcomes.get("best_candidate", 0)),
        None,
    )
    if not diff and accepted is not None:
        diff = accepted.diff
    if not diff:
        return None
    repo = episode.task.repo or episode.context.get("repo", "")
    if not repo:
        raise StoreError(f"episode {episode.episode_id} names no repository: set Task.repo")
    proposal = accepted.proposal if accepted else None
    record = PatternRecord(
        repo=repo, task_title=episode.task.title, task_body=episode.task.body,
        files=[c.file_path for c in proposal.changes] if proposal else [],
        summary=proposal.summary if proposal else "",
        diff=diff, reward=float(episode.outcomes.get("best_reward", accepted.reward.value if accepted and accepted.reward else 0.0)),
        created_at=episode.finished_at or utcnow(),
    )
    return add_pattern(store, record, run_id=episode.run_id, episode_id=episode.episode_id)


def list_patterns(store: Store, *, repo: str | None = None, limit: int | None = None) -> list[Pattern]:
    """Newest first."""
    query = select(PatternRow).order_by(PatternRow.created_at.desc(), PatternRow.id.desc())
    if repo is not None:
        query = query.where(PatternRow.repo == repo)
    if limit is not None:
        query = query.limit(limit)
    return [_pattern(row) for row in _rows(store, query)]


def _rows(store: Store, query: Select[tuple[PatternRow]]) -> list[PatternRow]:
    with Session(store.engine) as session:
        rows = list(session.scalars(query))
        session.expunge_all()  # detached: read (and annotated) after the session closes
        return rows


# --- finding similar ones ------------------------------------------------------------------------


async def similar_patterns(
    store: Store, repo: str, task: Task, *, limit: int = 2, embedder: OllamaEmbedder | None = None
) -> list[PatternHit]:
    """The `limit` patterns of `repo` most similar to the task, most similar first (ties: higher
    reward first); patterns with no similarity at all are left out. An identical earlier task is kept:
    its approved change is the best example there is."""
    if limit <= 0:
        return []
    rows = _rows(
        store, select(PatternRow).where(PatternRow.repo == repo).order_by(PatternRow.created_at.desc()).limit(SCAN_LIMIT)
    )
    if not rows:
        return []
    texts = [_task_text(r.task_title, r.task_body) for r in rows]
    scores: list[float] | None = None
    method = "lexical"
    if embedder is not None:
        scores = await _embedding_scores(store, rows, texts, task, embedder)
        method = "embedding" if scores is not None else "lexical"
    if scores is None:
        scores = similarities(task.text, [f"{t}\n{' '.join(r.files.get('paths', []))}" for t, r in zip(texts, rows, strict=True)])
    ranked = sorted(zip(rows, scores, strict=True), key=lambda pair: (-pair[1], -pair[0].reward))
    return [PatternHit(pattern=_pattern(r), similarity=s, method=method) for r, s in ranked[:limit] if s > 0]


async def _embedding_scores(
    store: Store, rows: list[PatternRow], texts: list[str], task: Task, embedder: OllamaEmbedder
) -> list[float] | None:
    """Cosine similarities; patterns without an embedding from this model get one now (and keep it)."""
    missing = [i for i, r in enumerate(rows) if r.embedding_model != embedder.model or not r.embedding]
    vectors = await _embed_or_none(embedder, [task.text, *(texts[i] for i in missing)])
    if vectors is None:
        return None
    query, fresh = vectors[0], vectors[1:]
    if missing:
        with store.engine.execution_options(aura_write=True).begin() as connection:
            for i, vector in zip(missing, fresh, strict=True):
                rows[i].embedding, rows[i].embedding_model = {"vector": vector}, embedder.model
                connection.execute(
                    update(PatternRow).where(PatternRow.id == rows[i].id)
                    .values(embedding={"vector": vector}, embedding_model=embedder.model)
                )
    return [max(0.0, _cosine(query, r.embedding["vector"])) for r in rows]  # type: ignore[index]


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
    patterns = list(reversed(list_patterns(store, repo=repo)))
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
