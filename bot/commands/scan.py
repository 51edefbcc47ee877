"""`aura-sicd scan PATH`: find what is broken on the base (failing tests, lint and type findings) and fix it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console

from bot.errors import ConfigError
from bot.commands.common import checked_client, load_settings, open_store
from bot.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scan",
        help="run the checks on the base, turn each failing test or lint/type finding into a task and work it",
        description="Runs the repository's checks on the base commit in the sandbox; each failing test, each file's "
        "lint or type findings and each other red check becomes a task, worked by the cycle on its own branch "
        "aura-sicd/<id> (kept for an approved fix only). Writes a session report (JSON, and Markdown beside it) and "
        "prints the Markdown. Exit 0 when every task worked was approved (or there was nothing to do), 1 otherwise, "
        "2 on a configuration error.",
    )
    p.add_argument("path", type=Path, help="the git repository to scan")
    p.add_argument("--max-tasks", type=int, default=5, metavar="N", help="work at most N findings (default 5)")
    p.add_argument("--base", default="HEAD", help="the commit to scan (default HEAD)")
    p.add_argument("--dry-run", action="store_true", help="work the tasks but keep no branch or commit")
    p.add_argument("--report", type=Path, metavar="FILE",
                   help="where to write the JSON report (default <data dir>/scans/<run id>.json); Markdown beside it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_tasks < 1:
        raise ConfigError("--max-tasks must be at least 1")
    if args.report is not None and args.report.is_dir():
        raise ConfigError(f"--report {args.report} is a directory; give a file name such as scan.json")
    return asyncio.run(scan(load_settings(), args))


async def scan(settings: Settings, args: argparse.Namespace) -> int:
    from bot.events import EventBus, IterationCompleted
    from bot.runs.scan import Scan, write_report
    from bot.runs.scan_report import Finding
    from bot.workspace import WorkspaceError
    from sandbox import SandboxError

    console = Console(stderr=True, highlight=False)
    llm = await checked_client(settings, args.path)
    try:
        bus = EventBus()

        def on_completed(e: IterationCompleted) -> None:
            r = e.record
            reward = f", reward {r.reward.value:.3f}" if r.reward else ""
            console.print(f"  iteration {r.number}: {r.status.value}{reward}")

        def on_finding(number: int, total: int, finding: Finding) -> None:
            console.print(f"[bold]task {number}/{total}[/bold] {finding.title}")

        bus.subscribe(IterationCompleted, on_completed)
        with open_store(settings) as store:
            console.print(f"running the checks on {args.base} of {args.path} ...")
            try:
                report = await Scan(settings, llm, store=store, bus=bus).run(
                    args.path, base=args.base, max_tasks=args.max_tasks, dry_run=args.dry_run, on_finding=on_finding)
            except (WorkspaceError, SandboxError) as exc:
                raise ConfigError(str(exc)) from exc
    finally:
        await llm.aclose()
    target = args.report or settings.data_dir / "scans" / f"{report.run_id}.json"
    json_path, md_path = write_report(report, target)
    sys.stdout.write(report.markdown())
    sys.stdout.flush()
    console.print(f"report: {json_path} and {md_path}")
    for task in report.approved:
        if task.branch:
            console.print(f"[green]approved[/green] {task.finding} on branch {task.branch}")
    done = all(t.status in ("approved", "no_change") for t in report.tasks) and not report.stopped
    return 0 if done else 1
