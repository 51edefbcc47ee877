"""Test impact on real projects with large suites: per attempt, the selected tests, their time, and the
full suite's time (bot/cycle/impact.py, bot/cycle/gate.py).

    .venv/bin/python benchmarks/test_impact.py [--project networkx|sphinx ...] [--backend bwrap|docker]
                                               [--json FILE]

The projects are public repositories, fetched as bare mirrors under /work/.mirror/ (the `fetch` tool,
e.g. `github:networkx/networkx`; `--mirrors DIR` for another place); nothing of them is committed here.
Each is checked out at the parent of a real bug fix (the base), and the sandbox's baseline run there is
the full suite's time. Then every attempt is checked the way the cycle checks it (`gated_check`):

- `fix`: the real fix commit, its tests included: should pass its selection and then the full suite;
- `tests-only`: the fix's tests without the fix (an attempt that writes the test but not the code);
- `revert`: an older real fix's source change undone on the base (an attempt that brings a fixed bug back).

Goals (issue 22): a rejected attempt's check costs at most 20 % of the full suite; an approved one at most
its selection plus one full run. The table says per attempt which tests were selected (and why, in --json),
what the check cost and whether the full suite ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cycle.baseline import Baseline, compare  # noqa: E402
from bot.cycle.gate import count_tests_run, gated_check  # noqa: E402
from bot.cycle.impact import select_tests  # noqa: E402
from sandbox import SandboxSettings, open_sandbox  # noqa: E402


class Attempt(BaseModel):
    name: str
    kind: str  # fix | tests-only | revert
    commit: str


class Project(BaseModel):
    name: str
    mirror: str  # owner+name under the mirrors directory
    fix: str  # the base is its parent
    reverts: list[str]
    task: str
    setup: str | None = None  # the sandbox's setup, when the project's own is not for a sandbox


PROJECTS = {
    "networkx": Project(
        name="networkx", mirror="networkx+networkx", fix="d3e018213",  # the last fix for Python 3.11
        reverts=["772c8dcf1", "59c5d203c", "5cfb44f7a"],
        task="diameter() and radius() of the null graph raise an unclear error",
        # its test extras bring pytest-mpl, whose matplotlib pulls pillow, which pip builds from source
        setup="python -m pip install --no-input -e . pytest"),
    "sphinx": Project(
        name="sphinx", mirror="sphinx-doc+sphinx", fix="2ac430c6df",
        reverts=["e8ab5cf1c5", "9ca942bef6", "245dea0911"],
        task="sphinx.ext.napoleon's autodoc-process-docstring handler breaks on the lines autodoc passes it"),
}


class Row(BaseModel):
    project: str
    attempt: str
    kind: str
    selected: int | None = None  # test files selected (None: the full suite at once)
    out_of: int = 0
    why_full: str | None = None
    selected_tests_run: int | None = None
    selected_s: float | None = None
    full_s: float | None = None
    check_s: float = 0.0
    full_suite_s: float = 0.0  # the baseline's full run
    share: float = 0.0  # check_s / full_suite_s
    approved: bool = False
    stopped_after_selection: bool = False
    reasons: dict[str, list[str]] = {}


def git(repo: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, text=True, check=True).stdout


def attempt_diff(repo: Path, attempt: Attempt) -> str:
    """The attempt's change against the base (the worktree is at the base, clean)."""
    files = [f for f in git(repo, "show", "--format=", "--name-only", attempt.commit).split() if f]
    tests = [f for f in files if "/tests/" in f or f.startswith("tests/")]
    if attempt.kind == "fix":
        return git(repo, "diff", f"{attempt.commit}^", attempt.commit)
    if attempt.kind == "tests-only":
        return git(repo, "diff", f"{attempt.commit}^", attempt.commit, "--", *tests)
    source = [f for f in files if f not in tests and f.endswith(".py")]  # not its changelog entry
    return git(repo, "diff", attempt.commit, f"{attempt.commit}^", "--", *source)  # undone


async def bench(project: Project, mirrors: Path, settings: SandboxSettings) -> list[Row]:
    mirror = mirrors / project.mirror / "repo"
    if not mirror.is_dir():
        raise SystemExit(f"{mirror} is missing: fetch github:{project.mirror.replace('+', '/')} first")
    attempts = [Attempt(name=f"fix {project.fix}", kind="fix", commit=project.fix),
                Attempt(name=f"tests of {project.fix} only", kind="tests-only", commit=project.fix),
                *(Attempt(name=f"revert {c}", kind="revert", commit=c) for c in project.reverts)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="aura-impact-") as tmp:
        repo = Path(tmp) / project.name
        subprocess.run(["git", "clone", "-q", str(mirror), str(repo)], check=True)
        git(repo, "checkout", "-q", f"{project.fix}^")
        if project.setup:  # a commit of the benchmark's own on the base: attempts' diffs still apply
            (repo / ".github").mkdir(exist_ok=True)
            (repo / ".github/aura-sicd.yml").write_text(f"setup: {project.setup}\n")
            git(repo, "add", ".github/aura-sicd.yml")
            git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "sandbox setup")
        async with open_sandbox(settings, repo) as box:
            started = time.perf_counter()
            full = await box.check(repo)
            baseline = Baseline.of(git(repo, "rev-parse", "HEAD").strip(), full)
            full_s = full.duration_s
            print(f"{project.name}: baseline {count_tests_run(full)} tests, {len(baseline.failing_tests)} failing, "
                  f"{full_s:.1f} s ({time.perf_counter() - started:.1f} s with the copy)", file=sys.stderr)
            for attempt in attempts:
                diff = attempt_diff(repo, attempt)
                git(repo, "apply", "--index", input=diff)
                selection = select_tests(repo, "python", diff, project.task, baseline)
                gated = await gated_check(box, repo, selection, baseline, project.task)
                git(repo, "reset", "-q", "--hard")
                git(repo, "clean", "-qfd")
                impact = gated.impact
                row = Row(
                    project=project.name, attempt=attempt.name, kind=attempt.kind,
                    selected=len(selection.tests) if selection.full_suite_only is None else None,
                    out_of=selection.out_of, why_full=selection.full_suite_only,
                    selected_tests_run=impact.selected_tests_run, selected_s=impact.selected_run_s,
                    full_s=impact.full_run_s, check_s=impact.check_s, full_suite_s=full_s,
                    share=round(impact.check_s / full_s, 3) if full_s else 0.0,
                    approved=impact.full_run_s is not None
                and not compare(baseline, gated.report, project.task).blocking,
                    stopped_after_selection=impact.stopped_after_selection,
                    reasons={t.path: t.reasons for t in selection.tests},
                )
                print(f"  {row.attempt}: {row.selected} selected, check {row.check_s:.1f} s "
                      f"({row.share:.0%} of the full suite), approved {row.approved}", file=sys.stderr)
                rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| project | attempt | selected files | tests run first | selected s | full s | check s | "
             "full suite s | check / full | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        selected = f"{r.selected} of {r.out_of}" if r.selected is not None else f"— ({r.why_full})"
        verdict = "approved" if r.approved else ("rejected, full suite skipped" if r.stopped_after_selection
                                                 else "rejected by the full suite")
        first = "—" if r.selected_tests_run is None else str(r.selected_tests_run)
        lines.append(f"| {r.project} | {r.attempt} | {selected} | {first} | {_s(r.selected_s)} | {_s(r.full_s)} "
                     f"| {r.check_s:.1f} | {r.full_suite_s:.1f} | {r.share:.0%} | {verdict} |")
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", action="append", choices=sorted(PROJECTS))
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker", "auto"])
    parser.add_argument("--timeout", type=float, default=1800.0, help="per check run, seconds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = SandboxSettings(backend=args.backend, timeout_s=args.timeout, memory_mb=4096)
    rows: list[Row] = []
    for name in args.project or sorted(PROJECTS):
        rows += asyncio.run(bench(PROJECTS[name], args.mirrors, settings))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([r.model_dump() for r in rows], indent=2))


if __name__ == "__main__":
    main()
