"""Every shipped SWE-bench instance in oracle mode: the known fix as the model's answer, through the full
cycle (bot/cycle/episode.py) and then the hidden tests. Prints, per instance: the project, whether the cycle
approved the fix, whether the hidden tests resolve it, whether the first generator prompt showed every
base line the fix changes, and the wall time; then the counts (issue 9's real-task proof, issue 12's
validation of the shipped suite).

    python benchmarks/swebench_oracle.py                  # real instances and toys, bwrap sandbox
    python benchmarks/swebench_oracle.py --suite real --jobs 2 --out /tmp/oracle   # resumable in OUT
    python benchmarks/swebench_oracle.py --suite real --with-tests   # the fix and its tests as the answer

`--with-tests` answers with the gold patch and the instance's test patch together: a correct fix that adds
and changes tests, which the verdict judges a second time with the base's tests (docs/reward.md). Its
"resolved" column is not meaningful (the hidden tests are already part of the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings
from bot.runs.swebench.instances import load_instances, shipped, shipped_repos
from bot.runs.swebench.oracle import ORACLE
from bot.runs.swebench.report import InstanceResult
from bot.runs.swebench.repos import Repos
from bot.runs.swebench.run import SwebenchRun
from sandbox import SandboxSettings

REALREPOS = ROOT / "tests" / "data" / "realrepos"


def mark(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def table(rows: list[InstanceResult]) -> str:
    lines = [f"{'instance':<42} {'project':<30} {'approved':>8} {'resolved':>8} {'lines in prompt':>15} {'wall s':>7}  status"]
    for r in rows:
        lines.append(f"{r.instance_id:<42} {r.repo:<30} {mark(r.approved):>8} {mark(r.resolved):>8} "
                     f"{mark(r.changed_lines_in_prompt):>15} {r.wall_s:>7.1f}  {r.status}"
                     + (f" ({r.error[:160]})" if r.error else ""))
    n = len(rows)
    proof = sum(r.approved and r.resolved and bool(r.changed_lines_in_prompt) for r in rows)
    lines += ["", (f"{n} instances of {len({r.repo for r in rows})} projects: approved {sum(r.approved for r in rows)}, "
                   f"resolved {sum(r.resolved for r in rows)}, changed lines in the first prompt "
                   f"{sum(bool(r.changed_lines_in_prompt) for r in rows)}, all three {proof}; "
                   f"environment failures {sum(r.status == 'environment failure' for r in rows)}, "
                   f"errors {sum(r.status == 'error' for r in rows)}; total wall {sum(r.wall_s for r in rows):.0f} s")]
    return "\n".join(lines)


async def run_suite(name: str, repos: Path, out: Path, jobs: int, sandbox: SandboxSettings,
                    with_tests: bool = False) -> list[InstanceResult]:
    settings = Settings(_env_file=None, data_dir=out / "data", sandbox=sandbox)
    instances = load_instances(shipped(name))
    if with_tests:
        instances = [i.model_copy(update={"patch": i.patch.rstrip("\n") + "\n" + i.test_patch}) for i in instances]
    runner = SwebenchRun(settings, Repos(repos, out / "mirrors"), out / name, jobs=jobs)
    report = await runner.run(instances, [ORACLE])
    return report.results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["real", "toys", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, help="keep results here (a later run resumes); default: a temporary folder")
    parser.add_argument("--backend", default="bwrap", help="sandbox backend (default bwrap)")
    parser.add_argument("--with-tests", action="store_true", help="answer with the gold patch and its test patch")
    args = parser.parse_args()
    suites = {"real": REALREPOS, "toys": shipped_repos()}
    chosen = list(suites) if args.suite == "all" else [args.suite]
    with tempfile.TemporaryDirectory(prefix="swebench-oracle-") as scratch:
        out = args.out or Path(scratch)
        for name in chosen:
            rows = asyncio.run(run_suite(name, suites[name], out, args.jobs, SandboxSettings(backend=args.backend),
                                         args.with_tests))
            print(f"\n== {name}\n{table(rows)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
