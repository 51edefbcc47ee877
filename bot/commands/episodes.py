"""`aura-sicd episodes`: list runs and episodes in the store, export a run's episodes as JSON files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Settings
from bot.store import Store, StoreError, export_episodes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("episodes", help="list and export recorded episodes")
    commands = parser.add_subparsers(dest="episodes_command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="list the runs, or one run's episodes")
    listing.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show this run's episodes")
    listing.add_argument("--repo", help="only runs of this repository (owner/name)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    listing.set_defaults(func=list_command)

    export = commands.add_parser("export", help="write a run's episodes as {run_id}_ep{NNNN}.json files")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument("--out", type=Path, help="directory to write to (default: <data dir>/episodes)")
    export.set_defaults(func=export_command)


def _open_store(settings: Settings) -> Store:
    return Store.open(settings.database_url)


def _fail(message: str) -> int:
    print(f"aura-sicd: {message}", file=sys.stderr)
    return 2


def export_command(args: argparse.Namespace) -> int:
    settings = Settings()
    out_dir: Path = args.out or settings.data_dir / "episodes"
    try:
        with _open_store(settings) as store:
            paths = export_episodes(store, args.run_id, out_dir)
    except StoreError as exc:
        return _fail(str(exc))
    if not paths:
        print(f"run {args.run_id} has no episodes yet", file=sys.stderr)
    for path in paths:
        print(path)
    return 0


def list_command(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        with _open_store(settings) as store:
            if args.run_id is None:
                return _print_runs(store, repo=args.repo, limit=args.limit)
            return _print_episodes(store, args.run_id)
    except StoreError as exc:
        return _fail(str(exc))


def _print_runs(store: Store, *, repo: str | None, limit: int) -> int:
    runs = store.list_runs(repo=repo, limit=limit)
    if not runs:
        print("no runs recorded yet")
        return 0
    rows = [("RUN", "KIND", "REPO", "STATUS", "EPISODES", "TOKENS", "STARTED")]
    for run in runs:
        summary = store.run_summary(run.run_id)
        rows.append(
            (
                run.run_id,
                run.kind,
                run.repo,
                run.status,
                str(summary.total_episodes),
                str(summary.total_tokens_used),
                f"{run.created_at:%Y-%m-%d %H:%M:%S}Z",
            )
        )
    _print_table(rows)
    return 0


def _print_episodes(store: Store, run_id: str) -> int:
    if store.get_run(run_id) is None:
        return _fail(f"unknown run {run_id!r}: `aura-sicd episodes list` shows the runs in the store")
    episodes = store.list_episode_summaries(run_id)
    if not episodes:
        print(f"run {run_id} has no episodes yet")
        return 0
    rows = [("EP", "EPISODE", "STATUS", "ITERATIONS", "BEST REWARD", "TOKENS")]
    for ep in episodes:
        best = "-" if ep.best_reward is None else f"{ep.best_reward:.3f}"
        rows.append(
            (str(ep.episode_number), ep.episode_id, ep.status.value, str(ep.iterations), best, str(ep.tokens_used))
        )
    _print_table(rows)
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
