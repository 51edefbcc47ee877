"""`aura-sicd serve [--host H] [--port P]`: the GitHub App's webhook receiver, served by uvicorn."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="receive GitHub webhooks and turn them into jobs",
        description="Serves POST /webhooks/github, /healthz, /readyz, and at / the first-run registration of the "
        "GitHub App when none is configured. Exit 2 on a configuration error.",
    )
    p.add_argument("--host", help="address to listen on (default AURA_HOST, 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default AURA_PORT, 3000)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def build_app(settings: Settings):
    """The ASGI app `serve` runs: the place where the durable job queue is plugged in."""
    from bot.jobs import DBOSJobQueue
    from webhooks.app import create_app

    return create_app(settings, queue=DBOSJobQueue(settings))


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from bot.github.client import GitHubAppNotConfigured
    from bot.store import StoreError

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc
    if args.host:
        settings = settings.model_copy(update={"host": args.host})
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = build_app(settings)
        # the stock asyncio loop: uvloop refuses the user/group arguments the sandbox starts its processes with
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False, loop="asyncio")
    except (GitHubAppNotConfigured, StoreError) as exc:
        raise ConfigError(str(exc)) from exc
    return 0
