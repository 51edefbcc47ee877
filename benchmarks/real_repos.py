"""Real projects in the sandbox: setup, checks and their baseline, per project, at each project's head.

    .venv/bin/python benchmarks/real_repos.py [--backend bwrap|docker] [--only NAME ...] [--json FILE]

For every bundle in tests/data/realrepos/ (or --bundles DIR): clone its default branch, then

- cold setup: open the sandbox with an empty cache (the environment is installed from the registries);
- warm: open it again (the environment cached) and run the checks (`Box.check`), against the raw test
  command alone in the same sandbox (`Box.run`, no report, no parsing): the harness's own cost;
- the baseline (bot/cycle/baseline.py): tests run and failing, red checks and why;
- approvable: whether an unchanged repository compared with its baseline is blocked by nothing (tests
  ran, no check is worse than on main) — so a correct fix can be approved. Projects whose own suite
  passes on main must all be approvable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cycle.baseline import Baseline, compare  # noqa: E402
from sandbox import SandboxSettings, open_sandbox  # noqa: E402

BUNDLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "realrepos"


class ProjectFigures(BaseModel):
    project: str
    head: str
    backend: str = ""
    cold_setup_s: float | None = None
    warm_open_s: float | None = None
    warm_check_s: float | None = None  # every check of the plan
    test_check_s: float | None = None  # the test check alone, as the report times it
    raw_tests_s: float | None = None  # the same test command run bare
    raw_exit: int | None = None
    tests_run: int = 0
    tests_failing: int = 0
    red_checks: list[str] = []
    approvable: bool = False
    error: str | None = None


def default_branch(bundle: Path) -> str:
    heads = subprocess.run(["git", "bundle", "list-heads", str(bundle)], capture_output=True, text=True, check=True).stdout
    names = [line.split()[1].removeprefix("refs/heads/") for line in heads.splitlines() if " refs/heads/" in line]
    return next((n for n in ("main", "master") if n in names), names[0])


def clone(bundle: Path, dest: Path) -> str:
    subprocess.run(["git", "clone", "-q", "-b", default_branch(bundle), str(bundle), str(dest)], check=True)
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=dest, capture_output=True, text=True).stdout.strip()


def test_command(box) -> list[str] | None:  # noqa: ANN001
    spec = next((c for c in box.plan.checks if c.parser not in ("none", None)), None)  # the test check
    return list(spec.command) if spec else None


async def measure(bundle: Path, work: Path, backend: str) -> ProjectFigures:
    repo = work / bundle.stem
    figures = ProjectFigures(project=bundle.stem, head=clone(bundle, repo))
    settings = SandboxSettings(_env_file=None, backend=backend, cache_dir=work / "cache")
    try:
        started = time.perf_counter()
        async with open_sandbox(settings, repo) as box:
            figures.cold_setup_s = round(time.perf_counter() - started, 2)
            figures.backend = box.backend_name
        started = time.perf_counter()
        async with open_sandbox(settings, repo) as box:
            figures.warm_open_s = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            report = await box.check(repo)
            figures.warm_check_s = round(time.perf_counter() - started, 2)
            command = test_command(box)
            if command:
                figures.test_check_s = next(c.duration_s for c in report.checks if c.command == command)
                await box.check(repo)  # a fresh workspace for the raw run
                started = time.perf_counter()
                raw = await box.run(command)
                figures.raw_tests_s = round(time.perf_counter() - started, 2)
                figures.raw_exit = raw.exit_code
    except Exception as exc:  # a project whose setup fails is a figure too
        figures.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return figures
    baseline = Baseline.of(figures.head, report)
    figures.tests_run = baseline.tests_run
    figures.tests_failing = len(baseline.failing_tests)
    figures.red_checks = [f"{c.name} ({c.status.value})" for c in baseline.checks if c.name in baseline.red_checks]
    comparison = compare(baseline, report, "")
    figures.approvable = baseline.tests_run > 0 and not comparison.blocking
    return figures


def render(rows: list[ProjectFigures]) -> str:
    def s(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    lines = ["| project | head | backend | cold setup s | warm open s | all checks s | test check s | raw test command s "
             "| tests run | failing | red checks on main | approvable |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        red = ", ".join(r.red_checks) or "–"
        verdict = "yes" if r.approvable else ("error: " + r.error if r.error else "no")
        lines.append(f"| {r.project} | {r.head} | {r.backend or '–'} | {s(r.cold_setup_s)} | {s(r.warm_open_s)} | "
                     f"{s(r.warm_check_s)} | {s(r.test_check_s)} | {s(r.raw_tests_s)} (exit {r.raw_exit}) | {r.tests_run} | {r.tests_failing} | {red} | {verdict} |")
    approvable = sum(r.approvable for r in rows)
    lines.append(f"\n{approvable} of {len(rows)} projects give a baseline a correct fix can be approved against.")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=BUNDLES)
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker", "auto"])
    parser.add_argument("--only", action="append", default=[], help="a bundle's name (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    bundles = sorted(b for b in args.bundles.glob("*.bundle") if not args.only or b.stem in args.only)
    if not bundles:
        print(f"no bundles in {args.bundles}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="aura-real-repos-"))
    work.chmod(0o755)  # bubblewrap runs as an unprivileged uid when the benchmark runs as root
    try:
        rows = []
        for bundle in bundles:
            print(f"{bundle.stem} ...", file=sys.stderr, flush=True)
            rows.append(await measure(bundle, work, args.backend))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps([r.model_dump() for r in rows], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
