"""`JobQueue`: the seam between admission, which enqueues jobs, and whatever runs them.

Every queue must be idempotent by delivery id (a redelivered webhook never runs a job twice), run at
most one job per `JobRequest.partition_key` at a time, and fold the jobs that share a `coalesce_key`
within a short window into one (a review's comments arrive as a burst of deliveries; they make one
iteration).

Implementations: `DBOSJobQueue` (bot/jobs/durable.py), the durable one `serve` and `worker` use, and
`InMemoryJobQueue` (bot/jobs/memory_queue.py), which keeps jobs in memory only (tests, benchmarks).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.github.job_request import JobRequest


@runtime_checkable
class JobQueue(Protocol):
    async def enqueue(self, job: JobRequest) -> bool:
        """Accept `job`; False when its delivery id was already enqueued (nothing new runs)."""
        ...

    async def ready(self) -> str | None:
        """None when the queue can take jobs, else what is wrong (for /readyz)."""
        ...
