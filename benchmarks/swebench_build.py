"""Build SWE-bench instances from bug-fix commits (and from the toy programs), running the tests before
and after each fix in the sandbox to find FAIL_TO_PASS and PASS_TO_PASS.

    python benchmarks/swebench_build.py                      # the commits of benchmarks/swebench_commits.json
    python benchmarks/swebench_build.py --only tomli --out /tmp/tomli.jsonl
    python benchmarks/swebench_build.py --toys               # the twelve toy programs, and their bundles
    python benchmarks/swebench_build.py --only cookie --ci   # tests run as the project's CI runs them

With --ci the two test runs happen outside any sandbox, with the project's own setup and test command
from benchmarks/fidelity_projects.json (for languages whose hidden tests bot/runs/swebench/hidden.py
cannot run yet: JavaScript, Ruby); test ids are then those of bot/runs/testids.py.

The commit list names, per commit, the repository (owner/name), its bundle in tests/data/realrepos/ and
the branch. A commit that does not make an instance is reported with the reason and left out; the
instances that do are written to OUT (default: the shipped bot/runs/swebench/data/real.jsonl, or
toys.jsonl with --toys).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.runs.eval import builtin_suite_dir, load_suite
from bot.runs.realtasks import clone_bundle
from bot.runs.realtasks import make_real_task
from bot.workspace import run_git
from bot.runs.swebench.build import BuildError, _tree, from_commit, from_toy
from bot.runs.swebench.instances import Instance, write_instances
from sandbox import SandboxError, SandboxSettings

DATA = ROOT / "bot" / "runs" / "swebench" / "data"
BUNDLES = ROOT / "tests" / "data" / "realrepos"


async def build_commits(specs: list[dict], sandbox: SandboxSettings, clones: Path) -> list[Instance]:
    built = []
    for spec in specs:
        started = time.monotonic()
        repo = clone_bundle(BUNDLES / f"{spec['bundle']}.bundle", spec["branch"], clones / spec["bundle"])
        try:
            instance = await from_commit(repo, spec["commit"], repo_name=spec["repo"], sandbox=sandbox)
        except (BuildError, SandboxError) as exc:
            print(f"SKIP {spec['repo']}@{spec['commit'][:7]}: {str(exc)[:600]}", flush=True)
            continue
        print(f"ok   {instance.instance_id}: {len(instance.FAIL_TO_PASS)} fail-to-pass, "
              f"{len(instance.PASS_TO_PASS)} pass-to-pass ({time.monotonic() - started:.0f} s)", flush=True)
        built.append(instance)
    return built


def build_outside(specs: list[dict], clones: Path) -> list[Instance]:
    """Instances whose FAIL_TO_PASS / PASS_TO_PASS come from the project's CI command run on the host."""
    from benchmarks.fidelity import PROJECTS, Project, run_ci

    projects = {p["bundle"]: Project.model_validate(p) for p in json.loads(PROJECTS.read_text(encoding="utf-8"))}
    built = []
    for spec in specs:
        if spec["bundle"] not in projects:
            print(f"SKIP {spec['repo']}@{spec['commit'][:7]}: no CI command in {PROJECTS.name}", flush=True)
            continue
        repo = clone_bundle(BUNDLES / f"{spec['bundle']}.bundle", spec["branch"], clones / spec["bundle"])
        task = make_real_task(repo, spec["commit"], project=spec["repo"])
        draft = Instance(instance_id=f"{spec['repo'].replace('/', '__')}-{task.commit[:7]}", repo=spec["repo"],
                         base_commit=task.base, problem_statement=f"{task.title}\n\n{task.body}".strip(),
                         patch=task.gold_diff, test_patch=task.test_diff, FAIL_TO_PASS=["(computed)"],
                         created_at=run_git(["log", "-1", "--format=%cI", task.commit], repo).strip())
        runs = []
        for with_gold in (False, True):
            _tree(repo, draft, with_gold=with_gold)
            runs.append(run_ci(projects[spec["bundle"]], repo, clones / f"work-{with_gold}", 900))
        before, after = runs
        f2p = [t for t, s in after.statuses.items() if s == "passed" and before.statuses.get(t) != "passed"]
        p2p = [t for t, s in after.statuses.items() if s == "passed" and before.statuses.get(t) == "passed"]
        if not f2p:
            print(f"SKIP {draft.instance_id}: no test fails before the fix and passes after it "
                  f"({after.error or ''}; {len(after.statuses)} tests after; end of output: {after.tail[-800:]})")
            continue
        print(f"ok   {draft.instance_id}: {len(f2p)} fail-to-pass, {len(p2p)} pass-to-pass (outside the sandbox)")
        built.append(draft.model_copy(update={"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p}))
    return built


async def build_toys(sandbox: SandboxSettings) -> list[Instance]:
    built = []
    for task in load_suite(builtin_suite_dir()):
        instance = await from_toy(task, DATA / "repos", sandbox)
        print(f"ok   {instance.instance_id}: {len(instance.FAIL_TO_PASS)} fail-to-pass, "
              f"{len(instance.PASS_TO_PASS)} pass-to-pass", flush=True)
        built.append(instance)
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=Path, default=ROOT / "benchmarks" / "swebench_commits.json")
    parser.add_argument("--only", help="only the commits of this bundle")
    parser.add_argument("--toys", action="store_true", help="build the toy programs' instances instead")
    parser.add_argument("--out", type=Path, help="the JSONL to write")
    parser.add_argument("--backend", default="bwrap", help="sandbox backend (default bwrap)")
    parser.add_argument("--ci", action="store_true", help="run the tests as the project's CI does, outside the sandbox")
    args = parser.parse_args()
    sandbox = SandboxSettings(backend=args.backend)
    if args.toys:
        instances = asyncio.run(build_toys(sandbox))
        out = args.out or DATA / "toys.jsonl"
    else:
        specs = [s for s in json.loads(args.commits.read_text()) if not args.only or s["bundle"] == args.only]
        with tempfile.TemporaryDirectory(prefix="swebench-build-") as clones:
            if args.ci:
                instances = build_outside(specs, Path(clones))
            else:
                instances = asyncio.run(build_commits(specs, sandbox, Path(clones)))
        out = args.out or DATA / "real.jsonl"
    if not instances:
        print("no instance was built", file=sys.stderr)
        return 1
    write_instances(out, instances)
    print(f"{len(instances)} instances written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
