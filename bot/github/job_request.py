"""The seam between the webhook receiver and the durable job runner.

A handler turns a delivery into a `JobRequest` — everything a job needs that the delivery already
says, nothing fetched — and hands it to a `JobQueue`. The queue must be idempotent by delivery id (a
redelivered webhook never runs a job twice), run at most one job per `partition_key` at a time, and
coalesce jobs that share a `coalesce_key` within a short window into one (the comments of one review
arrive as a burst of deliveries; they make one iteration).

`InMemoryJobQueue` is the implementation for tests and a single process without durability. A DBOS
queue drops in behind the same protocol:

- workflow id = `job.delivery_id` (`SetWorkflowID`): a second enqueue of the same delivery returns the
  first workflow's handle, so `enqueue` returns False for it;
- `queue_partition_key = job.partition_key` on a queue registered with `partition_concurrency=1` and
  `concurrency = settings.queue_concurrency`;
- `coalesce_key` set: enqueue through a DBOS `Debouncer` keyed by `coalesce_key` with the coalescing
  window as debounce period; since a debouncer keeps only the latest arguments, persist each job's
  guidance (the store's guidance table) at enqueue and let the debounced workflow read every entry
  not yet consumed for that pull request — `JobRequest.merge` gives the same result in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from bot.records import GuidanceEntry, utcnow

log = logging.getLogger(__name__)


class JobKind(StrEnum):
    ISSUE = "issue"  # a labelled issue, or /improve on an issue: a new aura-sicd/<id> PR
    PR_ITERATE = "pr_iterate"  # our own PR: /improve or review feedback → a new commit on its branch
    PR_FOREIGN = "pr_foreign"  # someone else's PR: a new aura-sicd/<id> PR targeting its branch
    FEEDBACK = "feedback"  # our PR closed: merged (positive) or not (negative); no cycle
    FORGET = "forget"  # `/aura forget <id>`: admission deletes a guidance-memory entry and replies; never enqueued


class ReplyTarget(BaseModel):
    """Where the job answers: react to, or reply in the thread of, this object."""

    kind: Literal["issue", "issue_comment", "review", "review_comment"]
    id: int  # issue number for "issue", else the comment/review id


class JobRequest(BaseModel):
    kind: JobKind
    delivery_id: str
    event: str  # "issues.labeled", "issue_comment.created", ...
    installation_id: int | None = None  # absent in repository-webhook deliveries: admission looks it up
    repo: str  # "owner/name"
    clone_url: str
    default_branch: str = "main"
    number: int  # the issue or pull request number
    base_ref: str | None = None  # PR jobs: the branch the PR targets
    head_ref: str | None = None  # PR jobs: the PR's branch
    head_sha: str | None = None
    title: str = ""  # sanitized; issue comments are fetched by the job, not here
    body: str = ""  # sanitized
    guidance: list[GuidanceEntry] = Field(default_factory=list)  # human/review guidance, sanitized
    triggered_by: str  # the login that asked; review requests and permission checks use it
    label: str | None = None  # the trigger label to remove when done
    reply_to: list[ReplyTarget] = Field(default_factory=list)
    merged: bool | None = None  # FEEDBACK only
    memory_id: int | None = None  # FORGET only: the entry to delete (None: the comment gave no number)
    coalesce_key: str | None = None  # jobs with the same key within the window become one
    coalesced_deliveries: list[str] = Field(default_factory=list)  # delivery ids merged into this one
    received_at: datetime = Field(default_factory=utcnow)

    @property
    def partition_key(self) -> str:
        """At most one job runs at a time per key: per PR branch for PR jobs, per issue otherwise."""
        if self.kind is JobKind.PR_ITERATE and self.head_ref:
            return f"{self.repo}:{self.head_ref}"
        return f"{self.repo}#{self.number}"

    @property
    def needs_permission(self) -> bool:
        """Jobs that run the cycle need a collaborator with write access; feedback does not."""
        return self.kind is not JobKind.FEEDBACK

    def merge(self, later: JobRequest) -> JobRequest:
        """This job with a later one of the same coalesce key folded in: guidance and replies add up."""
        seen = {(t.kind, t.id) for t in self.reply_to}
        return self.model_copy(
            update={
                "guidance": [*self.guidance, *later.guidance],
                "reply_to": [*self.reply_to, *(t for t in later.reply_to if (t.kind, t.id) not in seen)],
                "head_sha": later.head_sha or self.head_sha,
                "coalesced_deliveries": [*self.coalesced_deliveries, later.delivery_id],
            }
        )


@runtime_checkable
class JobQueue(Protocol):
    async def enqueue(self, job: JobRequest) -> bool:
        """Accept `job`; False when its delivery id was already enqueued (nothing new runs)."""
        ...

    async def ready(self) -> str | None:
        """None when the queue can take jobs, else what is wrong (for /readyz)."""
        ...


JobRunner = Callable[[JobRequest], Awaitable[None]]


class InMemoryJobQueue:
    """Idempotent by delivery id, coalescing by `coalesce_key`, serial per `partition_key`.

    Without a `runner` released jobs are only collected in `released` (tests, benchmarks). With one,
    each released job runs as an asyncio task, `concurrency` at most, one per partition key.
    Nothing here survives a restart: that is what the DBOS queue is for.
    """

    def __init__(
        self, *, coalesce_window_s: float = 5.0, runner: JobRunner | None = None, concurrency: int = 2
    ) -> None:
        self.coalesce_window_s = coalesce_window_s
        self.runner = runner
        self.released: list[JobRequest] = []
        self._seen: set[str] = set()
        self._pending: dict[str, JobRequest] = {}  # coalesce key → job waiting for its window
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._partitions: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, job: JobRequest) -> bool:
        if job.delivery_id in self._seen:
            return False
        self._seen.add(job.delivery_id)
        key = job.coalesce_key
        if key is None:
            self._release(job)
        elif key in self._pending:
            self._pending[key] = self._pending[key].merge(job)
        else:
            self._pending[key] = job
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self.coalesce_window_s, self._release_pending, key)
        return True

    async def ready(self) -> str | None:
        return None

    @property
    def pending(self) -> list[JobRequest]:
        return list(self._pending.values())

    async def flush(self) -> None:
        """Release every coalescing job now and wait for running jobs (tests, shutdown)."""
        for key in list(self._pending):
            self._timers.pop(key).cancel()
            self._release_pending(key)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _release_pending(self, key: str) -> None:
        self._timers.pop(key, None)
        self._release(self._pending.pop(key))

    def _release(self, job: JobRequest) -> None:
        self.released.append(job)
        if self.runner is not None:
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, job: JobRequest) -> None:
        assert self.runner is not None
        lock = self._partitions.setdefault(job.partition_key, asyncio.Lock())
        async with lock, self._slots:
            try:
                await self.runner(job)
            except Exception:
                log.exception("job %s (%s on %s#%s) failed", job.delivery_id, job.kind, job.repo, job.number)
