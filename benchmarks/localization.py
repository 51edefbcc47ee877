"""Does the generator's first prompt show the code the fix changes? Measured on real bug-fix commits.

For each commit in tests/data/realtasks.json (bundles in tests/data/realrepos/), the repository is
checked out at the fix's parent and the first generator context is built as the cycle builds it:
`build_generator_context` at the budget `Generator.context_budget` leaves with the default settings
(16,384-token window, 4,096 reserved for the reply), no guidance, no previous attempt. Printed per
task: the prompt's tokens, and how many of the base lines the gold fix changes (removed or rewritten
lines, or the line an insertion follows; version bumps left out) the context shows verbatim under
their file's header: without localization ("before", `locate_code=False`: the context as it was)
and with it ("after"); and the milliseconds of the index build plus the context with localization.

    .venv/bin/python benchmarks/localization.py [--only tomli] [--keep /tmp/realrepos]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bot.learning.realtasks import (
    RealTask,
    checkout,
    clone_bundle,
    first_context,
    load_specs,
    make_real_task,
    missing_lines,
)
from bot.tokens import count_tokens

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def measure(task: RealTask, root: Path, *, locate: bool) -> tuple[int, int]:
    """(prompt tokens, changed lines shown) for the first generator context."""
    rendered = first_context(task, root, locate_code=locate).render()
    return count_tokens(rendered), len(task.changed_lines) - len(missing_lines(task, rendered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="only the tasks of this bundle")
    parser.add_argument("--keep", type=Path, help="clone the bundles here (reused), not in a temporary folder")
    args = parser.parse_args()
    specs = [s for s in load_specs(DATA / "realtasks.json") if not args.only or s.bundle == args.only]
    with tempfile.TemporaryDirectory() as scratch:
        clones = args.keep or Path(scratch)
        print(f"{'project':<15}{'commit':<9}{'tokens before/after':>20} {'lines before':>12} {'after':>7}  {'ms':>5}  title")
        totals = {"before": 0, "after": 0, "lines": 0, "tasks_before": 0, "tasks_after": 0}
        for spec in specs:
            repo = clone_bundle(DATA / "realrepos" / f"{spec.bundle}.bundle", spec.branch, clones / spec.bundle)
            task = make_real_task(repo, spec.commit, project=spec.bundle)
            checkout(repo, task.base)
            tokens_before, before = measure(task, repo, locate=False)
            started = time.perf_counter()
            tokens, after = measure(task, repo, locate=True)
            elapsed = (time.perf_counter() - started) * 1000
            total = len(task.changed_lines)
            totals["before"] += before
            totals["after"] += after
            totals["lines"] += total
            totals["tasks_before"] += before == total
            totals["tasks_after"] += after == total
            print(f"{spec.bundle:<15}{spec.commit[:7]:<9}{tokens_before:>13}/{tokens:<6} {before:>8}/{total:<3} "
                  f"{after:>3}/{total:<3}"
                  f"  {elapsed:>5.0f}  {spec.title[:60]}")
        print(f"\nchanged lines shown: before {totals['before']}/{totals['lines']}, after {totals['after']}/"
              f"{totals['lines']}; tasks with every changed line shown: before {totals['tasks_before']}/{len(specs)},"
              f" after {totals['tasks_after']}/{len(specs)}")


if __name__ == "__main__":
    main()
