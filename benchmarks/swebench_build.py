"""Build SWE-bench instances from bug-fix commits (and from the toy programs), running the tests before
and after each fix in the sandbox to find FAIL_TO_PASS and PASS_TO_PASS.

    python benchmarks/swebench_build.py                      # the commits of benchmarks/swebench_commits.json
    python benchmarks/swebench_build.py --only tomli --out /tmp/tomli.jsonl
    python benchmarks/swebench_build.py --toys               # the twelve toy programs, and their bundles

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
from bot.runs.swebench.build import BuildError, from_commit, from_toy
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
    args = parser.parse_args()
    sandbox = SandboxSettings(backend=args.backend)
    if args.toys:
        instances = asyncio.run(build_toys(sandbox))
        out = args.out or DATA / "toys.jsonl"
    else:
        specs = [s for s in json.loads(args.commits.read_text()) if not args.only or s["bundle"] == args.only]
        with tempfile.TemporaryDirectory(prefix="swebench-build-") as clones:
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
