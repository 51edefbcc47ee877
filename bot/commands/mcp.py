"""`aura-sicd mcp`: the feedback loop as an MCP server, over stdio (default) or streamable HTTP."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.errors import ConfigError
from bot.commands.common import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mcp",
        help="serve the feedback loop as MCP tools (improve, code_feedback, check, episodes, run_summary, bench_report)",
        description="An MCP server on stdio (for a client that starts it) or, with --http, on streamable HTTP at "
        "http://HOST:PORT/mcp. Repository tools only open paths inside the --root directories; with SAFE_MODE on "
        "(the default) every episode is a dry run.",
    )
    p.add_argument("--root", action="append", type=Path, default=[], metavar="DIR",
                   help="a directory whose repositories the tools may open (repeatable)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP instead of stdio")
    p.set_defaults(func=run)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--http needs HOST:PORT, e.g. 127.0.0.1:8765, got {text!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    from bot.mcp.results import Roots
    from bot.mcp.server import build_server

    settings = load_settings()
    try:
        roots = Roots(args.root)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    host, port = parse_address(args.http) if args.http else ("127.0.0.1", 8000)
    server, aura = build_server(settings, roots, host=host, port=port)
    try:
        asyncio.run(server.run_streamable_http_async() if args.http else server.run_stdio_async())
    finally:
        aura.close()
    return 0
