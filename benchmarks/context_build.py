"""Harness time per iteration on a ~1,000-file repository (models and sandbox excluded).

Generates a Python repository in a temporary directory (packages of modules with classes and
functions, tests, docs, config; a git worktree like the cycle's), then times:

- RepoIndex.build: once per job;
- one iteration of harness work: policy.evaluate + apply_changes + index.refresh of the changed files,
  then build_generator_context for the next attempt (with a previous iteration: a traceback, a diff);

and prints the figures in milliseconds, and the prompt's tokens against the 16,384-token budget.
Target: at most 2 s per iteration, build excluded.

    .venv/bin/python benchmarks/context_build.py [--files 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bot.context import RepoIndex, build_generator_context
from bot.edits import apply_changes
from bot.cycle.policy import Policy
from bot.records import Change, ChangeType, Edit, IterationRecord, IterationStatus, Proposal, Task
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts

BUDGET_TOKENS = 16384
TARGET_MS = 2000.0
WORDS = ("order invoice customer payment ledger account shipment stock warehouse price discount tax report "
         "session token user profile cache queue worker event schedule retry backoff config parser render "
         "template export import batch record metric alert audit policy").split()


def _name(rng: random.Random, parts: int = 2) -> str:
    return "_".join(rng.choice(WORDS) for _ in range(parts))


def _camel(rng: random.Random) -> str:
    return "".join(w.capitalize() for w in _name(rng).split("_"))


def module_text(rng: random.Random, package: str, number: int) -> str:
    lines = [f'"""{package}.module_{number}: {" ".join(rng.sample(WORDS, 6))}."""', "",
             "from __future__ import annotations", "", "import logging", "from dataclasses import dataclass", "",
             "log = logging.getLogger(__name__)", ""]
    for _ in range(rng.randint(1, 3)):
        cls = _camel(rng) + str(number)
        fields = rng.sample(WORDS, 3)
        lines += ["", "@dataclass", f"class {cls}:", f'    """A {fields[0]} with its {fields[1]}."""', ""]
        lines += [f"    {f}: int = 0" for f in fields]
        for _ in range(rng.randint(2, 5)):
            method = _name(rng)
            lines += ["", f"    def {method}(self, amount: int, *, strict: bool = False) -> int:",
                      f'        """Apply {method.replace("_", " ")}."""',
                      f"        if strict and amount < self.{fields[0]}:",
                      f'            raise ValueError("{method}: amount below {fields[0]}")',
                      f"        self.{fields[1]} += amount",
                      f"        log.debug('{method} %s', amount)",
                      f"        return self.{fields[1]} * {rng.randint(2, 9)}"]
    for _ in range(rng.randint(2, 8)):
        function = _name(rng, 3)
        lines += ["", "", f"def {function}(items: list[int], limit: int = {rng.randint(5, 500)}) -> list[int]:",
                  f'    """Filter {function.replace("_", " ")} under the limit."""',
                  "    selected = []", "    for item in items:", "        if item > limit:", "            continue",
                  "        selected.append(item)", "    return sorted(selected)"]
    return "\n".join(lines) + "\n"


def generate_repo(root: Path, files: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    created: list[str] = []

    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        created.append(rel)

    put("README.md", "# Shop\n\nAn order and invoice service.\n")
    put("pyproject.toml", '[project]\nname = "shop"\nversion = "1.0"\n')
    put(".github/workflows/ci.yml", "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
    put("docs/index.md", "# Docs\n\n" + "\n".join(f"- {_name(rng)}" for _ in range(40)) + "\n")
    packages = [f"shop/{w}" for w in rng.sample(WORDS, 12)]
    for package in packages:
        put(f"{package}/__init__.py", "")
    n = 0
    while len(created) < files:
        package = packages[n % len(packages)]
        put(f"{package}/module_{n}.py", module_text(rng, package.replace("/", "."), n))
        if n % 4 == 0:
            put(f"tests/{package.split('/')[-1]}/test_module_{n}.py",
                f"from {package.replace('/', '.')}.module_{n} import *  # noqa\n\n\ndef test_smoke_{n}():\n"
                "    assert True\n")
        n += 1
    # one large module: context must cut it, not drop it
    put("shop/legacy/monolith.py", "".join(module_text(rng, "shop.legacy", 10_000 + k) for k in range(40)))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "init"],
                   cwd=root, check=True)
    return created


def previous_iteration(target: str, line: int) -> IterationRecord:
    traceback = (
        "Traceback (most recent call last):\n"
        f'  File "/workspace/tests/test_invoice.py", line 12, in test_invoice_total\n'
        f'  File "/workspace/{target}", line {line}, in invoice_total\n'
        "ValueError: invoice_total: amount below price\n"
    )
    report = CheckReport(backend="bench", pass_rate=0.75, checks=[CheckResult(
        name="tests", command=["pytest"], status=CheckStatus.FAILED, tests=TestCounts(passed=3, failed=1),
        failing_tests=[FailingTest(test_id="tests/test_invoice.py::test_invoice_total", message="ValueError",
                                   traceback=traceback)],
    )])
    diff = "".join(f"--- a/{target}\n+++ b/{target}\n@@ -{k},1 +{k},1 @@\n-old\n+new\n" for k in range(1, 60))
    return IterationRecord(run_id="bench", episode_id="bench", number=1, proposal_id="bench",
                           status=IterationStatus.REJECTED, check_report=report, diff=diff)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aura-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        created = generate_repo(root, args.files)
        generation = time.perf_counter() - started
        total_bytes = sum((root / p).stat().st_size for p in created)

        started = time.perf_counter()
        index = RepoIndex.build(root)
        build = time.perf_counter() - started

        modules = [p for p in created if "/module_" in p and p.startswith("shop/")]
        policy = Policy()
        task = Task(title="invoice_total raises ValueError for a discounted order",
                    body="The payment ledger should accept a discount. See shop/legacy/monolith.py.",
                    files=[modules[3]])
        previous = previous_iteration("shop/legacy/monolith.py", 900)

        rows = []
        for round_number in range(args.rounds):
            target = modules[10 + round_number]
            lines = (root / target).read_text().splitlines()
            search = next(line for line in lines if line.startswith("def "))
            proposal = Proposal(summary="bench", changes=[
                Change(file_path=target, change_type=ChangeType.UPDATE,
                       edits=[Edit(search=search + "\n", replace=search + "\n    # checked by the benchmark\n")]),
                Change(file_path=f"tests/test_bench_{round_number}.py", change_type=ChangeType.CREATE,
                       new_content="def test_bench():\n    assert True\n"),
            ])
            t0 = time.perf_counter()
            decision = policy.evaluate(proposal, root)
            t1 = time.perf_counter()
            applied = apply_changes(root, proposal.changes)
            t2 = time.perf_counter()
            index.refresh([a.file_path for a in applied])
            t3 = time.perf_counter()
            context = build_generator_context(index, task, budget_tokens=BUDGET_TOKENS, previous=previous)
            t4 = time.perf_counter()
            assert decision.allowed, decision.violations
            rows.append({"evaluate": t1 - t0, "apply": t2 - t1, "refresh": t3 - t2, "context": t4 - t3,
                         "iteration": t4 - t0, "tokens": context.tokens})

        print(f"repository: {len(created)} files generated, {len(index)} indexed, "
              f"{total_bytes / 1e6:.1f} MB (generated in {ms(generation)} ms)")
        print(f"RepoIndex.build (once per job): {ms(build)} ms")
        print(f"per iteration over {args.rounds} rounds (median / max, ms):")
        for key in ("evaluate", "apply", "refresh", "context", "iteration"):
            values = [row[key] for row in rows]
            print(f"  {key:<10} {ms(statistics.median(values)):>8} / {ms(max(values))}")
        tokens = [row["tokens"] for row in rows]
        print(f"prompt context: {max(tokens)} tokens of a {BUDGET_TOKENS}-token budget "
              f"({'within' if max(tokens) <= BUDGET_TOKENS else 'OVER'} budget)")
        worst = ms(max(row["iteration"] for row in rows))
        verdict = "meets" if worst <= TARGET_MS else "MISSES"
        print(f"worst iteration {worst} ms: {verdict} the {TARGET_MS:.0f} ms target (index build excluded)")


if __name__ == "__main__":
    main()
