"""What the web app holds while it runs: settings, store, queue, and the GitHub App once configured."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp
from bot.jobs.admission import Admitter, admitter_for
from bot.jobs.delivery_log import DeliveryLog
from bot.jobs.queue import JobQueue
from bot.store import Store
from bot.store.github import GitHubStore
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
    admitter: Admitter | None = None  # admission in this process (AURA_SERVE_ADMITS), once configured
    admission_concurrency: int = 16
    busy_window_s: float = 0.05  # the receiver counts as busy this long after its last delivery
    _admitting: bool = False
    _last_delivery: float = float("-inf")
    _starting: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.deliveries = DeliveryLog(self.github_store)

    def configure(self, credentials: AppCredentials) -> None:
        """Start serving as this App (at startup, or right after the first-run registration)."""
        self.credentials = credentials
        self.github = self.github_factory(credentials)
        if not self.settings.serve_admits:
            return  # `aura-sicd worker` processes admit what this one records
        self.admitter = admitter_for(
            self.settings, "serve", github=self.github, queue=self.queue, store=self.store,
            github_store=self.github_store, deliveries=self.deliveries, permission_ttl_s=self.permission_ttl_s,
            concurrency=self.admission_concurrency, receiver_busy=self.receiver_busy,
        )
        if self._admitting:  # registered while serving: start at once
            self._starting = asyncio.get_running_loop().create_task(self.admitter.start())

    def remember_label(self, repo: str, label: str) -> None:
        """A repository's own trigger label, learnt when a job reads its .github/aura-sicd.yml."""
        self.repo_labels[repo] = label

    async def start_admitting(self) -> None:
        """Admit in this process from now on (the lifespan, once the queue is up): leftovers first."""
        self._admitting = True
        if self.admitter is not None:
            await self.admitter.start()

    def delivery_received(self) -> None:
        """The receiver got a signed delivery (the in-process admitter gives way while they come)."""
        self._last_delivery = time.monotonic()

    def receiver_busy(self) -> bool:
        return time.monotonic() - self._last_delivery < self.busy_window_s

    def admission_due(self) -> None:
        """A job was recorded: the admitter in this process, if any, looks at once."""
        if self.admitter is not None:
            self.admitter.wake()

    async def drain(self) -> None:
        """Admit everything recorded so far and wait for it (tests; benchmarks)."""
        if self.admitter is not None:
            await self.admitter.settle()

    async def stop_admitting(self) -> None:
        """Shutdown: stop claiming, let the admissions in flight finish."""
        self._admitting = False
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self.admitter is not None:
            await self.admitter.stop()

    async def aclose(self) -> None:
        await self.stop_admitting()
        if self.github is not None:
            await self.github.aclose()
