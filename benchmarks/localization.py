"""Does the generator's first prompt show the code the fix changes? Measured on real bug-fix commits.

For each commit in tests/data/realtasks.json (bundles in tests/data/realrepos/), the repository is
checked out at the fix's parent and the first generator context is built as the cycle builds it:
`build_generator_context` at the task's part of the prompt's budget (`Generator.budget(task).task`, what
bot/cycle/steps.py gives the repository context) with the default settings (16,384-token window, 4,096
reserved for the reply), no guidance, no previous attempt; every column gets that same budget. Printed per
task: the prompt's tokens, and how many of the base lines the gold fix changes (removed or rewritten
lines, or the line an insertion follows; version bumps left out) the context shows verbatim under
their file's header, in three contexts:

- "base": the context as Aura's code at `--baseline REV` builds it (default: no such column), run in
  a subprocess on an export of that revision;
- "no-loc": this code with `locate_code=False` (no "Code the task is about" section);
- "loc": this code as the cycle runs it; "ms" is its index build plus context.

    .venv/bin/python benchmarks/localization.py [--only tomli] [--keep /tmp/realrepos] [--baseline 28cb0eb]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.runs.realtasks import (
    RealTask,
    checkout,
    clone_bundle,
    first_attempt_budget,
    first_context,
    load_specs,
    make_real_task,
    missing_lines,
)
from bot.llm.tokens import count_tokens

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
# the projects added with issue 20, which localization was not tuned on: reported apart from the others
NEW_PROJECTS = frozenset({"packaging", "pluggy", "jaraco.text", "prettytable", "pflag", "go-version", "cookie",
                          "path-to-regexp", "rake"})
# What an older revision runs, at this code's budget: only APIs that have not changed (RepoIndex, build_generator_context).
BASELINE_SCRIPT = """
import json, sys
from pathlib import Path
from bot.context import RepoIndex, build_generator_context
from bot.records import Task
request = json.load(sys.stdin)
task = Task.model_validate(request["task"])
index = RepoIndex.build(Path(request["root"]))
sys.stdout.write(build_generator_context(index, task, budget_tokens=request["budget"]).render())
"""


def export_revision(revision: str, dest: Path) -> Path:
    """Aura's own code at `revision`, exported (not checked out) into `dest`."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def baseline_prompt(code: Path, task: RealTask, root: Path) -> str:
    request = json.dumps({"task": task.task().model_dump(), "root": str(root), "budget": first_attempt_budget(task)})
    done = subprocess.run([sys.executable, "-c", BASELINE_SCRIPT], input=request, capture_output=True, text=True,
                          cwd=code, env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"}, check=True)
    return done.stdout


def shown(task: RealTask, prompt: str) -> int:
    return len(task.changed_lines) - len(missing_lines(task, prompt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="only the tasks of this bundle")
    parser.add_argument("--keep", type=Path, help="clone the bundles here (reused), not in a temporary folder")
    parser.add_argument("--baseline", help="also measure the context Aura's code at this git revision builds")
    args = parser.parse_args()
    specs = [s for s in load_specs(DATA / "realtasks.json") if not args.only or s.bundle == args.only]
    columns = ["base", "no-loc", "loc"] if args.baseline else ["no-loc", "loc"]
    with tempfile.TemporaryDirectory() as scratch:
        clones = args.keep or Path(scratch) / "repos"
        code = export_revision(args.baseline, Path(scratch) / "baseline") if args.baseline else None
        print(f"{'project':<15}{'commit':<8}" + "".join(f"{c + ' tokens':>14}{'lines':>7}" for c in columns)
              + f"{'ms':>6}  title")
        lines = dict.fromkeys(columns, 0)
        complete = {group: dict.fromkeys(columns, 0) for group in ("older", "new")}
        tasks = dict.fromkeys(("older", "new"), 0)
        total = 0
        for spec in specs:
            repo = clone_bundle(DATA / "realrepos" / f"{spec.bundle}.bundle", spec.branch, clones / spec.bundle)
            task = make_real_task(repo, spec.commit, project=spec.bundle)
            checkout(repo, task.base)
            prompts = {"no-loc": first_context(task, repo, locate_code=False).render()}
            if code is not None:
                prompts["base"] = baseline_prompt(code, task, repo)
            started = time.perf_counter()
            prompts["loc"] = first_context(task, repo).render()
            elapsed = (time.perf_counter() - started) * 1000
            count = len(task.changed_lines)
            total += count
            group = "new" if spec.bundle in NEW_PROJECTS else "older"
            tasks[group] += 1
            row = f"{spec.bundle:<15}{spec.commit[:7]:<8}"
            for column in columns:
                seen = shown(task, prompts[column])
                lines[column] += seen
                complete[group][column] += seen == count
                row += f"{count_tokens(prompts[column]):>14}{f'{seen}/{count}':>7}"
            print(f"{row}{elapsed:>6.0f}  {spec.title[:58]}")
        print("\nchanged lines shown: " + ", ".join(f"{c} {lines[c]}/{total}" for c in columns))
        print("tasks with every changed line in the first prompt:")
        for group, label in (("older", "projects before issue 20"), ("new", "projects added in issue 20")):
            if tasks[group]:
                print(f"  {label:<27}" + ", ".join(f"{c} {complete[group][c]}/{tasks[group]}" for c in columns))
        print(f"  {'all':<27}" + ", ".join(f"{c} {sum(complete[g][c] for g in complete)}/{len(specs)}" for c in columns))


if __name__ == "__main__":
    main()
