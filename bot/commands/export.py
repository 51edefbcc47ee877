"""`aura-sicd export --format sft|dpo|patterns`: training data and the pattern library as JSONL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.commands.common import load_settings
from bot.store import Store, StoreError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write training data (SFT/DPO, TRL's chat format) or the pattern library as JSONL",
        description="sft: prompt + approved/merged answer per line ({\"messages\": [...]}); dpo: a prompt with a "
        "chosen and a rejected answer ({\"prompt\", \"chosen\", \"rejected\"}); patterns: the approved changes the "
        "generator is shown as examples (import them with `aura-sicd learning import-patterns FILE`). Opted-out "
        "repositories are never exported.",
    )
    p.add_argument("--format", required=True, choices=["sft", "dpo", "patterns"], dest="fmt")
    p.add_argument("-o", "--out", type=Path, help="the JSONL file to write (default: <data dir>/export/<format>.jsonl)")
    p.add_argument("--repo", help="only this repository")
    p.add_argument("--pairing", choices=["prompt", "task"], default="prompt",
                   help="dpo: pair answers to the identical prompt (default) or to the same task")
    p.add_argument("--min-margin", type=float, default=0.05, help="dpo: least reward difference of a pair (default 0.05)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.learning.export import export_training_data
    from bot.learning.patterns import export_patterns

    settings = load_settings()
    out: Path = args.out or settings.data_dir / "export" / f"{args.fmt}.jsonl"
    if not 0 <= args.min_margin <= 1:
        print("aura-sicd: --min-margin must lie between 0 and 1", file=sys.stderr)
        return 2
    try:
        with Store.open(settings.database_url) as store:
            if args.fmt == "patterns":
                out.parent.mkdir(parents=True, exist_ok=True)
                count = export_patterns(store, out, repo=args.repo)
                print(f"{count} patterns written to {out}")
                return 0
            result = export_training_data(store, out, args.fmt, repo=args.repo, pairing=args.pairing, min_margin=args.min_margin)
    except (StoreError, OSError) as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    print(f"{result.written} {args.fmt.upper()} examples written to {out} "
          f"(from {result.attempts_seen} attempts in {len(result.repos)} repositories)")
    skipped = [(result.skipped_without_prompt, "recorded without their prompt"),
               (result.skipped_opted_out, "of opted-out repositories"),
               (result.skipped_closed, "approved but closed unmerged by a person")]
    for count, why in skipped:
        if count:
            print(f"  skipped {count} attempts {why}")
    return 0
