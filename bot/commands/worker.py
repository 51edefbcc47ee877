"""`aura-sicd worker`: a process that only works jobs from the durable queue (no web server).

Several workers on several machines share one Postgres `AURA_DBOS_URL`; give each a stable executor id
of its own (`--executor-id` or `AURA_DBOS_EXECUTOR_ID`): after a restart a worker resumes the jobs it
had in flight. Stops on SIGTERM/SIGINT; the job in flight resumes at its last finished step next time.
"""

from __future__ import annotations

import argparse

from bot.cli import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="work jobs from the durable queue (no web server)",
        description="Runs the GitHub App's jobs: the cycle for each admitted delivery, and publishing. Uses the "
        "same settings as `serve`. Exit 2 on a configuration error.",
    )
    p.add_argument("--executor-id", help="this process's stable name in the job queue (default AURA_DBOS_EXECUTOR_ID)")
    p.add_argument("--concurrency", type=int, help="jobs at once in this process (default AURA_QUEUE_CONCURRENCY)")
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
    try:
        asyncio.run(work(settings, store, github))
    finally:
        store.close()
    return 0


async def work(settings, store, github) -> None:
    import asyncio
    import logging
    import signal

    from bot.github.mirror import RepoMirror
    from bot.jobs import DBOSJobQueue, JobServices

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    queue = DBOSJobQueue(settings, run_jobs=True)
    services = JobServices(settings=settings, store=store, github=lambda: github, mirror=RepoMirror(settings.data_dir))
    await queue.launch(services)
    logging.getLogger(__name__).info("worker ready: up to %d jobs at once", settings.queue_concurrency)
    try:
        await stop.wait()
    finally:
        await queue.stop()
        await github.aclose()
