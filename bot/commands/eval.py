"""`aura-sicd eval [SUITE_DIR]`: the full cycle on a suite of tasks, per model, to pick a local model."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bot.commands.common import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="run a suite of tasks through the cycle per model: solve rate, iterations, tokens, time",
        description="A suite is a folder of tasks, each a folder with a small program, its tests and task.md. "
        "Without SUITE_DIR the suite shipped with aura-sicd is used (twelve buggy Python programs). Every task "
        "runs in a fresh repository in the sandbox, as a dry run. `aura-sicd eval swebench --help` runs "
        "SWE-bench-format instances; `aura-sicd eval compare A B` compares two of their reports.",
    )
    _suite_arguments(p)
    # `eval swebench ...` / `eval compare ...`: what follows SUITE_DIR goes to that command (bot/commands/swebench.py)
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _suite_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", nargs="?", type=Path, metavar="SUITE_DIR", help="the suite folder (default: the shipped suite)")
    p.add_argument("--model", action="append", default=[], dest="models",
                   help="a generator model to evaluate (repeatable; default AURA_GENERATOR_MODEL)")
    p.add_argument("--runs", type=int, default=1, help="runs per task and model (default 1)")
    p.add_argument("--task", action="append", default=[], dest="tasks", help="only this task (repeatable)")
    p.add_argument("--max-iterations", type=int, help="override AURA_MAX_ITERATIONS")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the full report as JSON")


def run(args: argparse.Namespace) -> int:
    from bot.commands import swebench
    from bot.runs.eval import EvalError, builtin_suite_dir, load_suite

    if args.suite is not None and str(args.suite) in swebench.SUBCOMMANDS:
        return swebench.main(str(args.suite), args.rest)
    if args.rest:  # options after SUITE_DIR: parse them as the suite's
        plain = argparse.ArgumentParser(prog="aura-sicd eval")
        _suite_arguments(plain)
        args = plain.parse_args([str(args.suite), *args.rest])

    settings = load_settings()
    if args.runs < 1 or (args.max_iterations is not None and args.max_iterations < 1):
        print("aura-sicd: --runs and --max-iterations must be at least 1", file=sys.stderr)
        return 2
    suite_dir = args.suite or builtin_suite_dir()
    try:
        suite = load_suite(suite_dir, only=args.tasks or None)
    except EvalError as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(evaluate(settings, args, suite, suite_dir.name if args.suite else "builtin"))


async def evaluate(settings, args: argparse.Namespace, suite, suite_name: str) -> int:  # noqa: ANN001
    from bot.runs.eval import EvalError, render_report, run_eval
    from bot.llm.providers import build_llm
    from bot.store import Store, StoreError
    from sandbox import SandboxError

    try:
        store = Store.open(settings.database_url)
    except StoreError as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with build_llm(settings) as llm:
            with tempfile.TemporaryDirectory(prefix="eval-", dir=settings.data_dir) as work:
                report = await run_eval(
                    settings, llm, store, suite, work_dir=Path(work), models=args.models or None, runs=args.runs,
                    max_iterations=args.max_iterations, suite_name=suite_name,
                )
    except (EvalError, SandboxError) as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(render_report(report))
    if args.json is not None:
        args.json.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"report written to {args.json}")
    return 0
