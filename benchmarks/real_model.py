"""The cycle with a real model: where the wall time of each iteration goes, and how much of the prompt
the server took from its cache.

llama-cpp-python's server (tests/llama_server.py) serves SmolLM2-135M-Instruct to all three roles
through the openai provider; the sandbox is bubblewrap running the repository's tests for real. Per
iteration (generator, checks, discriminator, and the agitator that guides the next one):

- prompt and generation: llama.cpp's own timings, read from the server's verbose log, which
  llama-cpp-python does not return in `usage`;
- server other: the rest of the time spent waiting on the server (HTTP, tokenize requests, grammar);
- sandbox: the checks (and the reproduction run), timed around the sandbox's `check`;
- harness: the rest, our own code.

Cache reuse is the share of each prompt llama.cpp reports as a prefix-match hit ("Llama.generate: N
prefix-match hit"). The server runs with its RAM prompt cache (--cache), since three roles share its
one KV cache: without it each role's request evicts the previous role's prompt.

    .venv/bin/python benchmarks/real_model.py [--iterations 3] [--edit-format whole-file] [--no-cache]
        [--gguf gemma-3-270m-q4_k_m.gguf --alias gemma-3-270m]

Needs scripts/real-model-setup and bubblewrap.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.cycle.loop import CycleRequest
from bot.cycle.episode import EpisodeRunner
from bot.events import EventBus, IterationStarted
from bot.llm.providers import build_llm
from bot.records import Task
from bot.store import Store
from sandbox import open_sandbox
from tests.llama_server import MODEL_ALIAS, N_CTX, LlamaServer, log_timings, missing
from tests.repos import make_repo

FILES = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        "from dataclasses import dataclass, field\n\n\n@dataclass\nclass Item:\n    name: str\n    price: float\n"
        "    quantity: int = 1\n\n\n@dataclass\nclass Cart:\n    items: list[Item] = field(default_factory=list)\n\n"
        "    def add(self, item: Item) -> None:\n        self.items.append(item)\n\n"
        "    def total(self) -> float:\n        return sum(item.price for item in self.items)\n"
    ),
    "shop/money.py": "def cents(amount: float) -> int:\n    return round(amount * 100)\n\n\ndef fmt(amount: float) -> str:\n    return f\"{amount:.2f} EUR\"\n",
    "tests/test_cart.py": (
        "from shop.cart import Cart, Item\n\n\ndef test_empty_total():\n    assert Cart().total() == 0\n\n\n"
        "def test_total_counts_quantities():\n    cart = Cart()\n    cart.add(Item('pen', 2.0, quantity=3))\n    assert cart.total() == 6.0\n"
    ),
    "tests/test_money.py": "from shop.money import cents, fmt\n\n\ndef test_cents():\n    assert cents(1.25) == 125\n\n\ndef test_fmt():\n    assert fmt(2) == '2.00 EUR'\n",
    "README.md": "# shop\n\nA small shopping cart.\n",
}
TASK = Task(title="Cart.total ignores quantities", body="Cart.total() sums prices but must multiply each by its quantity.")


class TimedSandbox:
    """The real sandbox, with the time of each check put on the iteration that was running."""

    def __init__(self) -> None:
        self.iteration = 0  # 0: the baseline, before the first iteration
        self.seconds: dict[int, float] = defaultdict(float)

    @asynccontextmanager
    async def opener(self, settings, path):
        async with open_sandbox(settings, path) as box:
            check = box.check

            async def timed(workdir: Path):
                started = time.perf_counter()
                try:
                    return await check(workdir)
                finally:
                    self.seconds[self.iteration] += time.perf_counter() - started

            box.check = timed
            yield box


async def run(args: argparse.Namespace, work: Path, server: LlamaServer) -> int:
    repo = make_repo(work / "shop", FILES)
    settings = Settings(
        llm_provider="openai", openai_base_url=server.base_url, generator_model=args.alias,
        discriminator_model=args.alias, agitator_model=args.alias, generator_num_ctx=N_CTX,
        discriminator_num_ctx=N_CTX, agitator_num_ctx=N_CTX, max_output_tokens=args.max_output_tokens,
        max_iterations=args.iterations, data_dir=work / "data", baseline=True,
        **({"edit_format": args.edit_format} if args.edit_format else {}),
        sandbox={"backend": "bwrap"},
    )
    sandbox = TimedSandbox()
    started: dict[int, float] = {}
    bus = EventBus()

    def on_started(event: IterationStarted) -> None:
        sandbox.iteration = event.number
        started.setdefault(event.number, time.perf_counter())

    bus.subscribe(IterationStarted, on_started)
    store = Store.open(settings.database_url)
    llm = build_llm(settings)
    try:
        runner = EpisodeRunner(settings, llm, store=store, bus=bus, sandbox_opener=sandbox.opener, learning=False)
        result = await runner.run(CycleRequest(repo_dir=repo, task=TASK, dry_run=True, max_iterations=args.iterations))
    finally:
        ended = time.perf_counter()
        await llm.aclose()
        store.close()
    episode = result.episode
    if episode is None:
        print(f"the run failed before anything was recorded: {result.error}")
        return 1

    calls = [(record.number, call) for record in episode.iterations for call in record.llm_calls]
    timings = log_timings(server.log())
    if len(timings) != sum(1 for _, call in calls if call.ok or call.completion_tokens):
        print(f"note: {len(timings)} completions in the server log for {len(calls)} recorded calls")
    formats = sorted({r.edit_format or "?" for r in episode.iterations})
    print(f"episode {episode.status.value} after {len(episode.iterations)} iteration(s); edit format {', '.join(formats)};"
          f" {len(calls)} model calls; baseline checks {sandbox.seconds[0]:.1f} s")
    print(f"{'iter':>4} {'wall s':>7} {'prompt':>7} {'gen':>7} {'srv oth':>7} {'sandbox':>7} {'harness':>7} "
          f"{'harn %':>6} {'gen prompt':>10} {'reused':>7} {'reuse %':>7}")
    numbers = sorted(started)
    totals = defaultdict(float)
    for position, number in enumerate(numbers):
        wall = (started[numbers[position + 1]] if position + 1 < len(numbers) else ended) - started[number]
        mine = [(call, timing) for (n, call), timing in zip(calls, timings, strict=False) if n == number]
        prompt = sum(t.prompt_ms for _, t in mine) / 1000
        generation = sum(t.generation_ms for _, t in mine) / 1000
        waited = sum(call.duration_ms for call, _ in mine) / 1000
        box = sandbox.seconds[number]
        harness = max(0.0, wall - waited - box)
        generator = [(c, t) for c, t in mine if c.role == "generator"]
        prompt_tokens = sum(t.reused_tokens + t.evaluated_tokens for _, t in generator)
        reused = sum(t.reused_tokens for _, t in generator)
        share = 100 * reused / prompt_tokens if prompt_tokens else 0.0
        print(f"{number:>4} {wall:>7.1f} {prompt:>7.1f} {generation:>7.1f} {waited - prompt - generation:>7.1f} "
              f"{box:>7.1f} {harness:>7.2f} {100 * harness / wall:>5.1f}% {prompt_tokens:>10} {reused:>7} {share:>6.1f}%")
        for key, value in (("wall", wall), ("harness", harness), ("tokens", prompt_tokens), ("reused", reused)):
            totals[key] += value if number >= 2 or key in ("wall", "harness") else 0
    if totals["tokens"]:
        print(f"generator prompt reused from the cache in iterations >= 2: {100 * totals['reused'] / totals['tokens']:.1f} %")
    print(f"harness share of wall time: {100 * totals['harness'] / totals['wall']:.2f} %")
    all_prompt = sum(t.reused_tokens + t.evaluated_tokens for t in timings)
    print(f"all requests: {sum(t.reused_tokens for t in timings)} of {all_prompt} prompt tokens reused")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--max-output-tokens", type=int, default=512)
    parser.add_argument("--edit-format", default=None, help="default: the model family's (whole-file for SmolLM2)")
    parser.add_argument("--no-cache", action="store_true", help="run the server without its RAM prompt cache")
    parser.add_argument("--gguf", type=Path, default=None, help="another GGUF model (default: SmolLM2-135M)")
    parser.add_argument("--alias", default=MODEL_ALIAS, help="the model's name on the server (picks the family's format)")
    args = parser.parse_args()
    if reason := missing():
        print(f"real model unavailable: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="real-model-") as tmp:
        work = Path(tmp)
        server = LlamaServer.start(work / "server.log", cache=not args.no_cache, model=args.gguf, alias=args.alias)
        try:
            return asyncio.run(run(args, work, server))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
