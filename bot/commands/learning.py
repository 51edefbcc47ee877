"""`aura-sicd learning`: guidance memory, the pattern library, opt-out and retention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.commands.common import load_settings, open_store
from bot.store import Store, StoredGuidance


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("learning", help="what the bot remembers across runs: memory, patterns, opt-out, retention")
    commands = parser.add_subparsers(dest="learning_command", metavar="SUBCOMMAND", required=True)

    memory = commands.add_parser("memory", help="list a repository's guidance memory, each text once")
    memory.add_argument("repo", metavar="REPO")
    memory.add_argument("--limit", type=int, default=50, help="at most N distinct texts (default 50)")
    memory.set_defaults(func=memory_command)

    forget = commands.add_parser("forget", help="delete one memory entry (the id from `learning memory`)")
    forget.add_argument("repo", metavar="REPO")
    forget.add_argument("guidance_id", metavar="ID", type=int)
    forget.set_defaults(func=forget_command)

    patterns = commands.add_parser("import-patterns", help="add patterns from a JSONL file written by `export --format patterns`")
    patterns.add_argument("file", type=Path)
    patterns.add_argument("--repo", help="file every pattern under this repository")
    patterns.set_defaults(func=import_command)

    out = commands.add_parser("opt-out", help="never use a repository's records as training data or patterns")
    out.add_argument("repo", metavar="REPO")
    out.add_argument("--reason")
    out.set_defaults(func=opt_out_command)

    back = commands.add_parser("opt-in", help="undo an opt-out")
    back.add_argument("repo", metavar="REPO")
    back.set_defaults(func=opt_in_command)

    keep = commands.add_parser("retention", help="delete runs, guidance and patterns older than N days")
    keep.add_argument("--days", type=int, help="default: AURA_RETENTION_DAYS")
    keep.set_defaults(func=retention_command)


def _with_store(body) -> int:  # noqa: ANN001 - body(store) -> int
    with open_store(load_settings()) as store:
        return body(store)


def memory_command(args: argparse.Namespace) -> int:
    from bot.learning.memory import SCAN_LIMIT, list_memory

    def body(store: Store) -> int:
        groups = same_text_groups(list_memory(store, args.repo, limit=SCAN_LIMIT))[: args.limit]
        if not groups:
            print(f"no memory for {args.repo} yet")
        for entries in groups:
            g = entries[0]  # the newest
            where = f" {g.path}" + (f":{g.line}" if g.line else "") if g.path else ""
            who = f" @{g.author}" if g.author else ""
            print(f"#{g.id:<6} {g.created_at:%Y-%m-%d} {g.source}{who}{where}{repeats(entries)}\n"
                  f"        {' '.join(g.text.split())[:200]}")
        return 0

    return _with_store(body)


def same_text_groups(entries: list[StoredGuidance]) -> list[list[StoredGuidance]]:
    """Entries with the same text (whitespace and case aside), newest first within and across groups;
    every run of a repeated lesson records it again, and a maintainer wants to read it once."""
    groups: dict[str, list[StoredGuidance]] = {}
    for entry in entries:
        groups.setdefault(" ".join(entry.text.split()).lower(), []).append(entry)
    return list(groups.values())


def repeats(entries: list[StoredGuidance], shown_ids: int = 5) -> str:
    """`, from 3 runs (also #9 #7)` for a text recorded more than once; entries without a run count alone."""
    if len(entries) == 1:
        return ""
    runs = len({e.run_id or f"entry {e.id}" for e in entries})
    others = [f"#{e.id}" for e in entries[1:]]
    more = f" and {len(others) - shown_ids} more" if len(others) > shown_ids else ""
    return f", from {runs} run{'s' if runs != 1 else ''} (also {' '.join(others[:shown_ids])}{more})"


def forget_command(args: argparse.Namespace) -> int:
    from bot.learning.memory import forget

    def body(store: Store) -> int:
        if forget(store, args.repo, args.guidance_id):
            print(f"forgot memory #{args.guidance_id} of {args.repo}")
            return 0
        print(f"aura-sicd: {args.repo} has no memory entry #{args.guidance_id}", file=sys.stderr)
        return 1

    return _with_store(body)


def import_command(args: argparse.Namespace) -> int:
    from bot.learning.patterns import import_patterns

    def body(store: Store) -> int:
        imported, skipped = import_patterns(store, args.file, repo=args.repo)
        print(f"{imported} patterns imported" + (f", {skipped} skipped (opted-out repositories)" if skipped else ""))
        return 0

    return _with_store(body)


def opt_out_command(args: argparse.Namespace) -> int:
    from bot.learning.retention import opt_out

    def body(store: Store) -> int:
        deleted = opt_out(store, args.repo, reason=args.reason)
        print(f"{args.repo} opted out of training data and patterns ({deleted} patterns deleted)")
        return 0

    return _with_store(body)


def opt_in_command(args: argparse.Namespace) -> int:
    from bot.learning.retention import opt_in

    def body(store: Store) -> int:
        print(f"{args.repo} opted back in" if opt_in(store, args.repo) else f"{args.repo} was not opted out")
        return 0

    return _with_store(body)


def retention_command(args: argparse.Namespace) -> int:
    from bot.learning.retention import apply_retention

    days = args.days if args.days is not None else load_settings().retention_days
    if days is None:
        print("aura-sicd: give --days N or set AURA_RETENTION_DAYS", file=sys.stderr)
        return 2

    def body(store: Store) -> int:
        r = apply_retention(store, days)
        print(f"deleted records older than {r.cutoff:%Y-%m-%d %H:%M} UTC: {r.runs} runs, {r.episodes} episodes, "
              f"{r.iterations} iterations, {r.guidance} guidance entries, {r.patterns} patterns; "
              f"{r.opted_out_patterns} patterns of opted-out repositories")
        return 0

    return _with_store(body)
