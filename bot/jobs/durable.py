"""DBOS: launching it for this process, and `DBOSJobQueue`, the durable `JobQueue`.

- System database: SQLite at `<data dir>/dbos.sqlite` by default, `AURA_DBOS_URL` (Postgres) when
  several processes on several machines share the jobs.
- The application version is pinned (`APPLICATION_VERSION`): a restart after an upgrade still resumes
  the jobs in flight. A change that reorders a workflow's steps must go behind `DBOS.patch()` (or bump
  the version and let old jobs finish first).
- Executor id: `AURA_DBOS_EXECUTOR_ID`, else `DBOS__VMID`, else `local` (a worker: the first free
  `worker-<host>-N`); unique per process (a second process with a live process's id refuses to
  start). A process resumes its own executor's unfinished jobs when it starts, and a watchdog in every
  process hands the jobs of a process that died to the queue for the others (bot/jobs/takeover.py).
- One job queue, partitioned by installation and `JobRequest.partition_key` (bot/jobs/fairness.py) with
  `partition_concurrency=1` (at most one job per PR branch or issue at a time, and at most
  `AURA_INSTALLATION_CONCURRENCY` per installation, across every process) and `worker_concurrency =
  AURA_QUEUE_CONCURRENCY` per process; a small second queue carries the coalescing workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from dbos import DBOS, DBOSConfig, Debouncer, SetEnqueueOptions, SetWorkflowID
from dbos._error import DBOSWorkflowIDInUseError

from bot.config import Settings
from bot.github.job_request import JobRequest
from bot.github.mirror import RepoMirror
from bot.jobs.fairness import queue_partition
from bot.jobs.job_steps import JobServices, configure
from bot.jobs.takeover import ExecutorIdInUse, ExecutorLocks, Watchdog
from bot.jobs.workflow import COALESCE_QUEUE, COALESCE_TOPIC, JOB_QUEUE, coalesce_workflow, job_workflow

if TYPE_CHECKING:
    from dbos import Queue

    from bot.github.client import GitHubApp
    from bot.jobs.scheduler import AutonomyScheduler
    from bot.store import Store

log = logging.getLogger(__name__)

APP_NAME = "aura-sicd"
APPLICATION_VERSION = "aura-sicd-jobs-1"  # pinned; see the module docstring before changing a workflow
QUEUE_POLL_S = 0.5


def executor_id(settings: Settings) -> str:
    return settings.dbos_executor_id or os.environ.get("DBOS__VMID") or "local"


def dbos_config(settings: Settings) -> DBOSConfig:
    return {
        "name": APP_NAME,
        "system_database_url": settings.dbos_database_url,
        "application_version": APPLICATION_VERSION,
        "executor_id": executor_id(settings),
        "log_level": "WARNING",
    }


class DBOSJobQueue:
    """The durable `JobQueue`: workflow id = delivery id; launched with the process (`start`/`launch`).

    `serve` hands one to `create_app`, whose lifespan calls `start` with the app's store and GitHub
    client; the `worker` command calls `start` with its own. Only one per process (DBOS is process-wide).
    """

    def __init__(self, settings: Settings, *, run_jobs: bool | None = None, executor_prefix: str | None = None) -> None:
        self.settings = settings  # its dbos_executor_id is the one this process holds once launched
        self.run_jobs = settings.serve_runs_jobs if run_jobs is None else run_jobs
        # without a configured executor id: the first free `<prefix>-1`, `<prefix>-2`, … (else `local`)
        self.executor_prefix = executor_prefix
        self._jobs: Queue | None = None
        self._coalesce: Queue | None = None
        self._debouncer: Debouncer | None = None
        self._scheduler: AutonomyScheduler | None = None
        self._locks: ExecutorLocks | None = None
        self.watchdog: Watchdog | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(
        self,
        *,
        store: Store,
        github: Callable[[], GitHubApp | None],
        remember_label: Callable[[str, str], None] | None = None,
    ) -> None:
        """Launch with the process's store and GitHub App (`github()`: None until one is configured);
        `remember_label(repo, label)` hears a repository's own trigger label when a job reads it."""
        services = JobServices(
            settings=self.settings,
            store=store,
            github=github,
            mirror=RepoMirror(self.settings.data_dir),
            remember_label=remember_label,
        )
        await self.launch(services)

    async def launch(self, services: JobServices) -> None:
        """Launch DBOS in the running event loop (workflows then run on it) and register the queues.

        Unfinished jobs of this executor resume right away, so the services are set first.
        """
        configure(services)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        use_wal(self.settings.dbos_database_url)
        locks = ExecutorLocks.for_url(self.settings.dbos_database_url)
        configured = self.settings.dbos_executor_id or os.environ.get("DBOS__VMID")
        try:  # before DBOS resumes this executor's jobs: no other live process may have its id
            if configured is None and self.executor_prefix:
                candidates = [f"{self.executor_prefix}-{n}" for n in range(1, 101)]
                executor = await asyncio.to_thread(locks.hold_first_free, candidates)
            else:
                executor = executor_id(self.settings)
                await asyncio.to_thread(locks.hold, executor)
        except ExecutorIdInUse:
            wanted = executor_id(self.settings) if configured or not self.executor_prefix else f"{self.executor_prefix}-N"
            raise ExecutorIdInUse(f"the executor id {wanted!r} is held by another running process on "
                                  f"{_redacted(self.settings.dbos_database_url)}: give each process its own "
                                  "(AURA_DBOS_EXECUTOR_ID, or `aura-sicd worker --executor-id`)") from None
        self.settings = self.settings.model_copy(update={"dbos_executor_id": executor})
        self._locks = locks
        try:
            await self._launch_dbos()
        except BaseException:
            locks.release()
            self._locks = None
            raise
        self.watchdog = Watchdog(locks, executor, APPLICATION_VERSION, poll_s=self.settings.takeover_poll_s)
        self.watchdog.start()
        self._scheduler = start_scheduler(services, self)  # scheduled scans, when autonomy is allowed
        log.info("durable job queue up (%s, executor %s, %s)", _redacted(self.settings.dbos_database_url),
                 executor, "running jobs" if self.run_jobs else "enqueue only")

    async def _launch_dbos(self) -> None:
        DBOS(config=dbos_config(self.settings))
        if not self.run_jobs:
            DBOS.listen_queues([])  # enqueue only; worker processes dequeue
        DBOS.launch()
        self._jobs = await DBOS.register_queue_async(
            JOB_QUEUE,
            worker_concurrency=self.settings.queue_concurrency,
            partition_concurrency=1,
            polling_interval_sec=QUEUE_POLL_S,
            on_conflict="always_update",
        )
        self._coalesce = await DBOS.register_queue_async(
            COALESCE_QUEUE, polling_interval_sec=QUEUE_POLL_S, on_conflict="always_update"
        )
        self._debouncer = Debouncer.create_async(coalesce_workflow, queue=self._coalesce)

    async def stop(self) -> None:
        """Shut DBOS down; jobs in flight stop where they are and resume at the next start."""
        if self._jobs is None:
            return
        if self._scheduler is not None:
            await self._scheduler.stop()
        self._jobs = self._coalesce = self._debouncer = self._scheduler = None
        if self.watchdog is not None:
            await self.watchdog.stop()
        await asyncio.to_thread(DBOS.destroy)
        configure(None)
        if self._locks is not None:  # only now: no job of this executor runs any more
            self._locks.release()
            self._locks = None

    # --- the JobQueue protocol -------------------------------------------------------------------

    async def enqueue(self, job: JobRequest) -> bool:
        if self._jobs is None or self._debouncer is None:
            raise RuntimeError("the durable job queue is not launched")
        payload = job.model_dump(mode="json")
        if job.coalesce_key:
            return await self._coalesce_job(job, payload)
        try:
            with (SetWorkflowID(job.delivery_id, workflow_id_reuse_policy="reject"),
                  SetEnqueueOptions(queue_partition_key=queue_partition(job, self.settings))):
                await self._jobs.enqueue_async(job_workflow, payload)
        except DBOSWorkflowIDInUseError:
            return False
        return True

    async def _coalesce_job(self, job: JobRequest, payload: dict) -> bool:
        """Debounce by coalesce key; the debounced workflow also gets each job as a message.

        The debouncer keeps only the latest arguments, so earlier jobs of the burst reach the workflow as
        messages (durable in the system database) and it folds them all into one job.
        """
        assert self._debouncer is not None
        if await DBOS.get_workflow_status_async(job.delivery_id) is not None:
            return False  # this delivery started the burst's workflow before
        with SetWorkflowID(job.delivery_id):
            handle = await self._debouncer.debounce_async(job.coalesce_key, self.settings.review_coalesce_s, payload)
        await DBOS.send_async(handle.workflow_id, payload, COALESCE_TOPIC)
        return True

    async def ready(self) -> str | None:
        if self._jobs is None:
            return "the durable job queue is not launched"
        await DBOS.list_workflows_async(limit=1, load_input=False, load_output=False)
        return None


def start_scheduler(services: JobServices, queue: DBOSJobQueue) -> AutonomyScheduler | None:
    """The scheduled scans' loop (bot/jobs/scheduler.py), or None when autonomy is not allowed."""
    from bot.jobs.scheduler import AutonomyScheduler, GitHubRepoSource, autonomy_allowed

    if (why := autonomy_allowed(services.settings)) is not None:
        log.info("no scheduled scans: %s", why)
        return None
    scheduler = AutonomyScheduler(services.settings, services.github_store, queue, GitHubRepoSource(services.github))
    scheduler.start()
    return scheduler


def use_wal(url: str) -> None:
    """Put a SQLite system database in WAL mode (it stays so): about twice the enqueues a second.

    DBOS opens SQLite in its default rollback-journal mode, where every commit rewrites and syncs a
    journal; in WAL mode a commit appends to the log. Several processes on one machine share it as before.
    """
    import sqlite3

    from sqlalchemy.engine import make_url

    from bot.store.engine import private_sqlite_file

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    private_sqlite_file(url)  # 0600: job inputs and outputs live here
    with contextlib.closing(sqlite3.connect(parsed.database, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _redacted(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"
