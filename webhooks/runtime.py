"""What the web app holds while it runs: settings, store, queue, and the GitHub App once configured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp
from bot.github.job_request import JobQueue, JobRequest
from bot.github.permissions import PermissionChecker
from bot.store import Store
from bot.store.github import GitHubStore
from webhooks.admission import Admission
from webhooks.delivery_log import DeliveryLog
from webhooks.routing import Router

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]  # None when fine, else what is wrong


@dataclass
class Runtime:
    settings: Settings
    store: Store
    github_store: GitHubStore
    queue: JobQueue
    router: Router
    github_factory: Callable[[AppCredentials], GitHubApp]
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    max_body_bytes: int = 25 * 1024 * 1024
    permission_ttl_s: float = 60.0
    repo_labels: dict[str, str] = field(default_factory=dict)
    credentials: AppCredentials | None = None
    github: GitHubApp | None = None
    admission: Admission | None = None
    admission_concurrency: int = 16
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._admission_slots = asyncio.Semaphore(self.admission_concurrency)
        self.deliveries = DeliveryLog(self.github_store)

    def configure(self, credentials: AppCredentials) -> None:
        """Start serving as this App (at startup, or right after the first-run registration)."""
        self.credentials = credentials
        self.github = self.github_factory(credentials)
        self.admission = Admission(
            github=self.github,
            permissions=PermissionChecker(self.github, ttl_s=self.permission_ttl_s),
            queue=self.queue,
            store=self.store,
            github_store=self.github_store,
            deliveries=self.deliveries,
        )

    def remember_label(self, repo: str, label: str) -> None:
        """A repository's own trigger label, learnt when a job reads its .github/aura-sicd.yml."""
        self.repo_labels[repo] = label

    async def admit(self, job: JobRequest) -> None:
        if self.admission is None:
            log.warning("delivery %s kept for later: no GitHub App configured", job.delivery_id)
            return
        async with self._admission_slots:
            await self.admission.admit(job)

    async def resume_admissions(self) -> int:
        """Admit deliveries acknowledged before the last stop but never admitted."""
        pending = await asyncio.to_thread(self.github_store.pending_admissions)
        for delivery in pending:
            if delivery.job is not None:
                self.spawn(self.admit(JobRequest.model_validate(delivery.job)))
        return len(pending)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every admission in flight (shutdown; tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self.github is not None:
            await self.github.aclose()
