"""Scheduled scans: each installed repository whose `.github/aura-sicd.yml` has an `autonomy` schedule
gets a SCAN job when its cron expression comes due; the durable queue does the rest (bot/jobs/autonomy.py).

Off unless `ENABLE_AUTONOMY` is set, and never while `SAFE_MODE` is on. Stateless: a due time makes the
job's delivery id (`scan:<repo>@<time>`), and the queue accepts each delivery id once, so several
processes ticking, or a restart, never enqueue one scan twice; a time missed while nothing ran is
caught up within `CATCH_UP`. A repository already at its `max_open_prs` open bot PRs is not scanned.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from croniter import croniter
from pydantic import BaseModel

from bot.config import Settings
from bot.github.job_request import JobKind, JobRequest
from bot.github.repo_config import RepoConfig, RepoConfigInvalid, parse_repo_config
from bot.jobs.queue import JobQueue
from bot.store.github import GitHubStore
from sandbox.repo_config import CONFIG_PATH

log = logging.getLogger(__name__)

CATCH_UP = timedelta(hours=6)  # a due time older than this is skipped, not run late
SCHEDULER_LOGIN = "aura-sicd[bot]"


def autonomy_allowed(settings: Settings) -> str | None:
    """None when scheduled scans may run, else why not."""
    if not settings.enable_autonomy:
        return "autonomy is off (set ENABLE_AUTONOMY=1)"
    if settings.safe_mode:
        return "SAFE_MODE is on: no scheduled scans (set SAFE_MODE=0)"
    return None


def due_time(schedule: str, now: datetime, catch_up: timedelta = CATCH_UP) -> datetime | None:
    """The latest time the schedule fired at or before `now`, if within `catch_up`; UTC."""
    now = now.astimezone(UTC)
    # croniter's get_prev is strictly before its start: start a second later so `now` itself counts
    last = croniter(schedule, now + timedelta(seconds=1)).get_prev(datetime)
    return last if now - last <= catch_up else None


class ScheduledRepo(BaseModel):
    repo: str
    installation_id: int
    clone_url: str
    default_branch: str
    config: RepoConfig | None  # None: no `.github/aura-sicd.yml`, or an invalid one (logged)


class RepoSource(Protocol):
    async def describe(self, installation_id: int, repo: str) -> ScheduledRepo: ...


class GitHubRepoSource:
    """Each repository's clone URL, default branch and configuration from the GitHub API, cached a while."""

    def __init__(self, github: Callable[[], object | None], *, ttl_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.github = github  # () -> GitHubApp | None
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, ScheduledRepo]] = {}

    async def describe(self, installation_id: int, repo: str) -> ScheduledRepo:
        cached = self._cache.get(repo)
        if cached is not None and self.clock() - cached[0] < self.ttl_s and cached[1].installation_id == installation_id:
            return cached[1]
        from githubkit.exception import RequestFailed

        app = self.github()
        if app is None:
            raise RuntimeError("no GitHub App is configured in this process")
        gh = app.installation_client(installation_id)  # type: ignore[attr-defined]
        owner, name = repo.split("/", 1)
        info = (await gh.rest.repos.async_get(owner, name)).json()
        branch = info.get("default_branch") or "main"
        try:
            content = (await gh.rest.repos.async_get_content(owner, name, CONFIG_PATH, ref=branch)).json()
            text = base64.b64decode(content.get("content") or "").decode("utf-8") if isinstance(content, dict) else None
        except RequestFailed as exc:
            if exc.response.status_code != 404:
                raise
            text = None
        try:
            config = parse_repo_config(text) if text is not None else None
        except RepoConfigInvalid as exc:
            log.warning("scheduled scans: %s of %s is invalid, skipping it: %s", CONFIG_PATH, repo, exc.text)
            config = None
        described = ScheduledRepo(repo=repo, installation_id=installation_id, clone_url=info["clone_url"],
                                  default_branch=branch, config=config)
        self._cache[repo] = (self.clock(), described)
        return described


class AutonomyScheduler:
    def __init__(self, settings: Settings, github_store: GitHubStore, queue: JobQueue, source: RepoSource, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.github_store = github_store
        self.queue = queue
        self.source = source
        self.clock = clock
        self.sleep = sleep
        self._task: asyncio.Task | None = None

    async def tick(self) -> list[JobRequest]:
        """Enqueue the scans that are due now; returns the jobs the queue accepted (new ones only)."""
        if autonomy_allowed(self.settings) is not None:
            return []
        now = self.clock()
        enqueued = []
        installations = await asyncio.to_thread(self.github_store.list_installations)
        for installation in installations:
            for repo in installation.repositories:
                try:
                    job = await self._due_job(installation.installation_id, repo, now)
                    if job is not None and await self.queue.enqueue(job):
                        log.info("scheduled scan of %s enqueued (%s)", repo, job.delivery_id)
                        enqueued.append(job)
                except Exception:  # one repository's trouble (GitHub down, no access) never stops the others
                    log.exception("scheduled scans: could not check %s", repo)
        return enqueued

    async def _due_job(self, installation_id: int, repo: str, now: datetime) -> JobRequest | None:
        described = await self.source.describe(installation_id, repo)
        autonomy = described.config.autonomy if described.config is not None else None
        if autonomy is None:
            return None
        due = due_time(autonomy.schedule, now)
        if due is None:
            return None
        open_prs = await asyncio.to_thread(self.github_store.count_open_bot_prs, repo)
        if open_prs >= autonomy.max_open_prs:
            log.info("scheduled scan of %s skipped: %d open bot PRs (max_open_prs %d)", repo, open_prs, autonomy.max_open_prs)
            return None
        return JobRequest(
            kind=JobKind.SCAN, delivery_id=f"scan:{repo}@{due:%Y-%m-%dT%H:%MZ}", event="schedule",
            installation_id=installation_id, repo=repo, clone_url=described.clone_url,
            default_branch=described.default_branch, number=0, title=f"scheduled scan ({autonomy.schedule})",
            triggered_by=SCHEDULER_LOGIN, received_at=now,
        )

    # --- running in the background -------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="aura-sicd-autonomy-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduled scans: tick failed")
            await self.sleep(self.settings.autonomy_tick_s)
