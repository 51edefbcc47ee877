"""`aura-sicd eval swebench` and `aura-sicd eval compare`: solve rates on SWE-bench-format instances
(bot/runs/swebench/), and two reports side by side. `aura-sicd eval` dispatches here."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.commands.common import load_settings

SUBCOMMANDS = ("swebench", "compare")


def swebench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aura-sicd eval swebench",
        description="Run the full cycle on SWE-bench instances (real repositories, hidden tests) and score them "
        "with SWE-bench's rule. Writes OUT/predictions.jsonl (SWE-bench's predictions format) and OUT/report.json; "
        "a run into the same OUT resumes where an earlier one stopped.",
    )
    p.add_argument("instances", type=Path, metavar="INSTANCES",
                   help="JSON or JSONL in SWE-bench's instance format, or 'real' / 'toys' for the shipped suites")
    p.add_argument("--repos", type=Path, help="folder with DIR/<owner>__<name> (git repository or bare mirror) or "
                   "DIR/<owner>__<name>.bundle (default for 'toys': the shipped bundles)")
    p.add_argument("--out", type=Path, required=True, help="folder for results, predictions.jsonl and report.json")
    p.add_argument("--oracle", action="store_true", help="the gold patch is the model's answer (validates the instances)")
    p.add_argument("--model", action="append", default=[], dest="models", help="a generator model (repeatable)")
    p.add_argument("--limit", type=int, help="only the first N instances")
    p.add_argument("--jobs", type=int, default=1, help="instances run at the same time (default 1)")
    p.add_argument("--instance", action="append", default=[], dest="only", help="only this instance (repeatable)")
    p.add_argument("--max-iterations", type=int, help="override AURA_MAX_ITERATIONS (the oracle needs 1)")
    return p


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aura-sicd eval compare",
                                description="Compare two `eval swebench` reports instance by instance.")
    p.add_argument("a", type=Path, metavar="A", help="report.json (or the OUT folder holding it)")
    p.add_argument("b", type=Path, metavar="B", help="report.json (or the OUT folder holding it)")
    p.add_argument("--model-a", help="the model of A to compare, when A holds several")
    p.add_argument("--model-b", help="the model of B to compare, when B holds several")
    return p


def main(command: str, argv: list[str]) -> int:
    if command == "compare":
        return compare(compare_parser().parse_args(argv))
    return swebench(swebench_parser().parse_args(argv))


def compare(args: argparse.Namespace) -> int:
    from bot.runs.swebench.report import ReportError, compare, load_report, render_comparison

    try:
        result = compare(load_report(args.a), load_report(args.b), model_a=args.model_a, model_b=args.model_b)
    except ReportError as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    print(render_comparison(result))
    return 0


def swebench(args: argparse.Namespace) -> int:
    from bot.runs.swebench.instances import InstanceError, load_instances, shipped, shipped_repos
    from bot.runs.swebench.oracle import ORACLE

    if (args.limit is not None and args.limit < 1) or args.jobs < 1 or (args.max_iterations or 1) < 1:
        print("aura-sicd: --limit, --jobs and --max-iterations must be at least 1", file=sys.stderr)
        return 2
    path = shipped(str(args.instances)) if str(args.instances) in ("real", "toys") else args.instances
    repos = args.repos or (shipped_repos() if str(args.instances) == "toys" else None)
    if repos is None or not repos.is_dir():
        print(f"aura-sicd: --repos must be a folder of repositories (got {repos})", file=sys.stderr)
        return 2
    try:
        instances = load_instances(path, only=args.only or None, limit=args.limit)
    except InstanceError as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    models = ([ORACLE] if args.oracle else []) + list(dict.fromkeys(args.models))
    settings = load_settings()
    models = models or [settings.generator_model]
    return asyncio.run(_run(settings, args, instances, models, repos, str(path)))


async def _run(settings, args, instances, models, repos_dir: Path, instances_file: str) -> int:
    from bot.cycle.episode import ServerUnavailable
    from bot.runs.swebench.oracle import ORACLE
    from bot.runs.swebench.report import render_report
    from bot.runs.swebench.repos import RepoError, Repos
    from bot.runs.swebench.run import SwebenchRun
    from bot.llm.providers import build_llm
    from sandbox import SandboxError

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    llm = build_llm(settings) if any(m != ORACLE for m in models) else None
    runner = SwebenchRun(settings, Repos(repos_dir, out / "work" / "mirrors"), out, llm=llm,
                         max_iterations=args.max_iterations, jobs=args.jobs, instances_file=instances_file)
    try:
        report = await runner.run(instances, models)
    except (RepoError, SandboxError, *ServerUnavailable) as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    finally:
        if llm is not None:
            await llm.aclose()
    print(render_report(report))
    print(f"predictions: {out / 'predictions.jsonl'}\nreport: {out / 'report.json'}")
    return 0
