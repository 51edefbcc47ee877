"""Harness time per iteration of the cycle, model and sandbox time excluded, on a ~1,000-file repository.

The model answers instantly over HTTP (respx) and the sandbox is a stand-in that returns a canned report,
so what is measured is our own code: checkout, context (BM25, repo map), policy, edits, diff, reward,
guidance, records and the store. Also prints the generator prompt's size against its token budget.

    .venv/bin/python benchmarks/cycle_harness.py [--files 1000] [--iterations 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import respx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings  # noqa: E402
from bot.cycle.loop import Cycle, CycleRequest  # noqa: E402
from bot.records import Task  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.llm.tokens import count_message_tokens  # noqa: E402
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts  # noqa: E402
from tests.fakes.ollama import FakeOllama  # noqa: E402

WORDS = "parse render account ledger invoice cache token session widget report schedule export".split()


def make_repo(root: Path, n_files: int) -> Path:
    """A Python package of n_files modules with functions and classes, plus the bug the task names."""
    root.mkdir(parents=True)
    for i in range(n_files - 2):
        pkg = root / "app" / f"pkg{i % 40}"
        pkg.mkdir(parents=True, exist_ok=True)
        w = WORDS[i % len(WORDS)]
        body = [f'"""Module {i}: {w} helpers."""', "", "import math", ""]
        for j in range(6):
            body += [f"def {w}_{i}_{j}(value, factor={j}):", f'    """{w.title()} step {j} of module {i}."""',
                     "    total = 0", "    for k in range(factor):", "        total += math.sqrt(abs(value) + k)",
                     "    return total", "", ""]
        body += [f"class {w.title()}{i}:", "    def __init__(self, name):", "        self.name = name", "",
                 "    def describe(self):", f"        return f'{w} {{self.name}}'", ""]
        (pkg / f"mod{i}.py").write_text("\n".join(body))
    (root / "app" / "billing.py").write_text(
        "def invoice_total(lines, tax_rate):\n    subtotal = sum(lines)\n    return subtotal - subtotal * tax_rate\n"
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_billing.py").write_text(
        "from app.billing import invoice_total\n\n\ndef test_tax_is_added():\n    assert invoice_total([100], 0.2) == 120\n"
    )
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    return root


class InstantBox:
    backend_name = "stand-in"

    async def check(self, workdir: Path, *, selection=None) -> CheckReport:  # the CheckBox contract
        failing = FailingTest(
            test_id="tests/test_billing.py::test_tax_is_added",
            message="assert 80.0 == 120",
            traceback='  File "app/billing.py", line 3, in invoice_total\nAssertionError: assert 80.0 == 120',
        )
        return CheckReport(
            backend="stand-in", pass_rate=0.0, pass_rate_reason="0 of 1 tests passed",
            checks=[CheckResult(name="tests", command=["pytest"], status=CheckStatus.FAILED, exit_code=1,
                                tests=TestCounts(failed=1), failing_tests=[failing])],
        )


@asynccontextmanager
async def instant_sandbox(settings, path):
    yield InstantBox()


PROPOSAL = {
    "summary": "Add tax instead of subtracting it",
    "changes": [{"file_path": "app/billing.py", "change_type": "update",
                 "edits": [{"search": "    return subtotal - subtotal * tax_rate", "replace": "    return subtotal + subtotal * tax_rate"}],
                 "new_content": None, "rationale": "tax is added to the subtotal"}],
}
RUBRIC = {"coverage": 0.5, "accuracy": 0.5, "coherence": 0.8, "formatting": 0.9, "issues": ["tests fail"], "comments": []}
GUIDE = {"guidance": "The test still fails: check the sign in invoice_total.", "focus_points": ["app/billing.py"], "improvement_plan": ["fix the sign"]}


async def main(n_files: int, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        repo = make_repo(tmp_path / "repo", n_files)
        print(f"repository: {n_files} files, made in {time.perf_counter() - t0:.1f} s")
        fake = FakeOllama(router)
        settings = Settings(_env_file=None, ollama_host=fake.host, data_dir=tmp_path / "data", max_iterations=iterations)
        fake.pull(settings.generator_model, settings.discriminator_model)
        fake.always("generator", PROPOSAL).always("discriminator", RUBRIC).always("agitator", GUIDE)
        store = Store.open(settings.database_url)
        cycle = Cycle(settings, fake.llm(), store=store, sandbox_opener=instant_sandbox)
        task = Task(title="invoice_total subtracts the tax", body="app/billing.py: invoice_total([100], 0.2) gives 80, should be 120.")
        t0 = time.perf_counter()
        episode = await cycle.run(CycleRequest(repo_dir=repo, task=task))
        total = time.perf_counter() - t0
        harness = [r.harness_ms for r in episode.iterations]
        print(f"episode: {len(episode.iterations)} iterations, status {episode.status.value}, wall {total:.2f} s "
              f"(includes checkout, index build, worktree removal)")
        print(f"harness per iteration (model and sandbox excluded): median {statistics.median(harness):.0f} ms, "
              f"max {max(harness):.0f} ms  [target <= 2000 ms]")
        budget = settings.generator_num_ctx - settings.max_output_tokens
        sizes = [count_message_tokens(r["messages"]) for r in fake.requests_for("generator")]
        print(f"generator prompt: max {max(sizes)} tokens (estimate) of a {budget}-token input budget "
              f"(num_ctx {settings.generator_num_ctx} - {settings.max_output_tokens} for the reply)  "
              f"[{'within' if max(sizes) <= budget else 'OVER'} budget]")
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.files, args.iterations))
