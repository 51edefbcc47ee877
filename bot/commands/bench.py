"""`aura-sicd bench`: progress read from the store: report, compare (with a bootstrap CI), challenges."""

from __future__ import annotations

import argparse
import sys

from pydantic import BaseModel

from bot.commands.common import load_settings, open_store
from bot.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks of progress from the recorded attempts")
    commands = parser.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)

    report = commands.add_parser("report", help="per-metric means, reward first → last, most common issues")
    report.add_argument("--repo", help="only this repository (owner/name, or a local repository's name)")
    report.add_argument("--file", help="only attempts that change this file")
    report.add_argument("--limit", type=int, help="only the newest N attempts")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(func=report_command)

    compare = commands.add_parser("compare", help="B against A per metric, with a 95%% bootstrap confidence interval")
    compare.add_argument("a", metavar="A", help="a run id, or model:NAME for every attempt of a generator model")
    compare.add_argument("b", metavar="B", help="a run id, or model:NAME")
    compare.add_argument("--repo", help="with model:NAME, only this repository")
    compare.add_argument("--json", action="store_true", help="print JSON")
    compare.set_defaults(func=compare_command)

    hard = commands.add_parser("challenges", help="the toughest tasks (lowest reward, most iterations) to run again")
    hard.add_argument("--repo", help="only this repository")
    hard.add_argument("--limit", type=int, default=10, help="at most N tasks (default 10)")
    hard.add_argument("--json", action="store_true", help="print JSON")
    hard.set_defaults(func=challenges_command)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float, digits: int = 3) -> str:
    """`+0.120`, `-0.050`; a value that rounds to zero is `+0.000`, never `-0.000`."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _json(model: BaseModel | list[BaseModel]) -> None:
    if isinstance(model, list):
        print("[" + ",\n".join(m.model_dump_json(indent=2) for m in model) + "]")
    else:
        print(model.model_dump_json(indent=2))


def _run(args: argparse.Namespace, body) -> int:  # noqa: ANN001 - body(store) -> int
    settings = load_settings()
    if getattr(args, "limit", None) is not None and args.limit < 1:
        print("aura-sicd: --limit must be at least 1", file=sys.stderr)
        return 2
    with open_store(settings) as store:
        return body(store)


def report_command(args: argparse.Namespace) -> int:
    from bot.learning.bench import bench_report

    def body(store: Store) -> int:
        report = bench_report(store, repo=args.repo, file=args.file, limit=args.limit)
        if args.json:
            _json(report)
            return 0
        scope = ", ".join(f"{k} {v}" for k, v in (("repo", args.repo), ("file", args.file)) if v) or "all repositories"
        print(f"{report.attempts} attempts ({report.scored} scored, {report.approved} approved) — {scope}")
        if not report.scored:
            print("no scored attempts yet: run `aura-sicd improve` or a training run first")
        for m in report.metrics:
            print(f"  {m.name:<13} mean {_fmt(m.mean, 1 if m.name == 'tokens' else 3):>9}   (n={m.n})")
        print(f"reward first → last: {_fmt(report.reward_first)} → {_fmt(report.reward_last)} "
              f"(delta {_fmt(report.reward_delta) if report.reward_delta is None else _signed(report.reward_delta)})")
        if report.top_issues:
            print("most common discriminator issues:")
            for text, count in report.top_issues:
                print(f"  {count:>4}x  {text}")
        return 0

    return _run(args, body)


def compare_command(args: argparse.Namespace) -> int:
    from bot.learning.bench import bench_compare

    def body(store: Store) -> int:
        comparison = bench_compare(store, args.a, args.b, repo=args.repo)
        if args.json:
            _json(comparison)
            return 0
        print(f"B = {args.b} against A = {args.a}; 95% bootstrap CI of mean(B) - mean(A), "
              f"{comparison.resamples} resamples")
        print(f"  {'metric':<13} {'mean A':>9} {'mean B':>9} {'delta':>9}   {'95% CI':<22} n(A) n(B)")
        for m in comparison.metrics:
            ci = "-" if m.ci_low is None else f"[{_signed(m.ci_low)}, {_signed(m.ci_high)}]"
            delta = "-" if m.delta is None else _signed(m.delta)
            print(f"  {m.name:<13} {_fmt(m.mean_a):>9} {_fmt(m.mean_b):>9} {delta:>9}   {ci:<22} {m.n_a:>4} {m.n_b:>4}")
        return 0

    return _run(args, body)


def challenges_command(args: argparse.Namespace) -> int:
    from bot.learning.bench import challenges

    def body(store: Store) -> int:
        found = challenges(store, repo=args.repo, limit=args.limit)
        if args.json:
            _json(found)
            return 0
        if not found:
            print("no recorded tasks yet")
        for number, c in enumerate(found, 1):
            print(f"{number:>3}. [{c.repo}] {c.task.title}")
            print(f"     approved {c.approved}/{c.episodes}, best reward {_fmt(c.best_reward)}, "
                  f"{c.mean_iterations:.1f} iterations on average, last run {c.last_run_id}")
        return 0

    return _run(args, body)
