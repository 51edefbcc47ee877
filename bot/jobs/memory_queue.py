"""`InMemoryJobQueue`: a `JobQueue` that keeps its jobs in memory (tests, the receiver benchmark).

`create_app` falls back on it when given no queue; then nothing runs the jobs unless a `runner` is
given, and nothing survives a restart: `serve` and `worker` use the durable `DBOSJobQueue`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.github.job_request import JobRequest

log = logging.getLogger(__name__)

JobRunner = Callable[[JobRequest], Awaitable[None]]


class InMemoryJobQueue:
    """Idempotent by delivery id, coalescing by `coalesce_key`, serial per `partition_key`.

    Without a `runner` released jobs are only collected in `released` (tests, benchmarks). With one,
    each released job runs as an asyncio task, `concurrency` at most, one per partition key.
    A coalescing job waits `coalesce_window_s` on `sleep` (tests pass a clock they move by hand).
    """

    def __init__(
        self,
        *,
        coalesce_window_s: float = 5.0,
        runner: JobRunner | None = None,
        concurrency: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.coalesce_window_s = coalesce_window_s
        self.runner = runner
        self.sleep = sleep
        self.released: list[JobRequest] = []
        self._seen: set[str] = set()
        self._pending: dict[str, JobRequest] = {}  # coalesce key → job waiting for its window
        self._windows: dict[str, asyncio.Task[None]] = {}  # coalesce key → its window's timer
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
            self._windows[key] = asyncio.create_task(self._release_after_window(key))
        return True

    async def ready(self) -> str | None:
        return None

    @property
    def pending(self) -> list[JobRequest]:
        return list(self._pending.values())

    async def flush(self) -> None:
        """Release every coalescing job now and wait for running jobs (tests, shutdown)."""
        for key in list(self._pending):
            self._windows.pop(key).cancel()
            self._release_pending(key)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _release_after_window(self, key: str) -> None:
        await self.sleep(self.coalesce_window_s)
        self._windows.pop(key, None)
        self._release_pending(key)

    def _release_pending(self, key: str) -> None:
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
