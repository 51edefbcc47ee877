"""`aura-sicd worker`: a process that admits deliveries and works jobs from the durable queue (no web server).

Admission (installation, permission check, 👀, enqueue) of the deliveries `serve` recorded runs here
unless `--no-admit`; with `AURA_SERVE_ADMITS=false`, `serve` only records and acknowledges. Several
workers may admit at once: each delivery is claimed by one of them and enqueued once.

Several workers on several machines share one Postgres `AURA_DBOS_URL` (and `AURA_STORE_URL`); each has
a stable executor id of its own (`--executor-id` or `AURA_DBOS_EXECUTOR_ID`, else the first free
`worker-<host>-N`; a second process with an id in use refuses to start): after a restart a worker
resumes the jobs it had in flight and takes back the deliveries it was admitting. A worker that dies
for good has its jobs taken over by the others within `AURA_TAKEOVER_POLL_S` (bot/jobs/takeover.py).
Stops on SIGTERM/SIGINT; the job in flight resumes at its last finished step next time.
"""

from __future__ import annotations

import argparse

from bot.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="admit deliveries and work jobs from the durable queue (no web server)",
        description="Admits the deliveries `serve` recorded and runs the GitHub App's jobs: the cycle for each "
        "admitted delivery, and publishing. Uses the same settings as `serve`. Exit 2 on a configuration error.",
    )
    p.add_argument("--executor-id", help="this process's stable name in the job queue (default AURA_DBOS_EXECUTOR_ID, "
                   "else the first of worker-<host>-1, -2, … no running process holds)")
    p.add_argument("--concurrency", type=int, help="jobs at once in this process (default AURA_QUEUE_CONCURRENCY)")
    p.add_argument("--no-admit", action="store_true",
                   help="only work jobs; leave admitting deliveries to `serve` or other workers")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from bot.commands.common import load_settings
    from bot.github.client import GitHubApp, GitHubAppNotConfigured
    from bot.store import Store, StoreError

    settings = load_settings()
    if args.executor_id:
        settings = settings.model_copy(update={"dbos_executor_id": args.executor_id})
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        settings = settings.model_copy(update={"queue_concurrency": args.concurrency})
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        github = GitHubApp.from_settings(settings)
        store = Store.open(settings.database_url)
    except (GitHubAppNotConfigured, StoreError) as exc:
        raise ConfigError(str(exc)) from exc
    from bot.jobs.takeover import ExecutorIdInUse

    try:
        asyncio.run(work(settings, store, github, admit=not args.no_admit))
    except ExecutorIdInUse as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        store.close()
    return 0


async def work(settings, store, github, *, admit: bool = True, run_jobs: bool = True) -> None:
    """Launch the job queue (and the admitter), then run until SIGTERM/SIGINT.

    `run_jobs=False` only admits and enqueues (the receiver benchmark's worker).
    """
    import asyncio
    import logging
    import signal
    import socket

    from bot.jobs import DBOSJobQueue
    from bot.jobs.admission import admitter_for
    from bot.store.github import GitHubStore

    log = logging.getLogger(__name__)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    queue = DBOSJobQueue(settings, run_jobs=run_jobs, executor_prefix=f"worker-{socket.gethostname()}")
    await queue.start(store=store, github=lambda: github)
    settings = queue.settings  # with the executor id this process holds
    admitter = None
    if admit:
        # no wake-up from a receiver in another process: poll often (an indexed read, no write lock)
        admitter = admitter_for(settings, "worker", github=github, queue=queue, store=store,
                                github_store=GitHubStore(store), poll_s=0.2)
        await admitter.start()
    log.info("worker %s ready: %s%s", settings.dbos_executor_id,
             f"up to {settings.queue_concurrency} jobs at once" if run_jobs else "no jobs",
             ", admitting deliveries" if admit else "")
    try:
        await stop.wait()
    finally:
        if admitter is not None:
            await admitter.stop()
        await queue.stop()
        await github.aclose()
