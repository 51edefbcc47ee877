"""Learning with a real model: does the bandit's edit-format choice move to the format that works?

A series of episodes with one tiny model served by llama-cpp-python (tests/llama_server.py) and two or
more edit formats to choose from (`AURA_EDIT_FORMAT_CHOICES`), all on the same repository and task (the
shop of benchmarks/real_model.py, or `--real-task BUNDLE:COMMIT`) and in one store, with learning on:
before each episode the bandit draws a format from the rewards of the earlier episodes' iterations
(bot/learning/bandit.py, role "edit_format"). Printed per block of episodes: each format's share of the
episodes, the mean reward of the block's iterations (an iteration without a reward, e.g. a reply that
did not apply, counts as 0), and the chance the bandit picks each format after the block: the share of
10,000 draws from its posteriors (bot/learning/bandit.py, where an edit that applied counts at least
APPLIED_CREDIT), which moves before a short series' realized shares do.

    .venv/bin/python benchmarks/real_model_learning.py [--episodes 12] [--block 4] [--model smollm2]
        [--edit-formats json-line-edits,whole-file] [--iterations 1] [--real-task python-slugify:a1543fe0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_model import model_file, task_repo
from bot.config import Settings
from bot.cycle.episode import EpisodeRunner
from bot.cycle.loop import CycleRequest
from bot.learning.bandit import ModelBandit, format_arm
from bot.llm.providers import build_llm
from bot.store import Store
from tests.llama_server import N_CTX, LlamaServer, missing


Played = tuple[str, float, dict[str, float]]  # (format, mean reward of its iterations, pick chance per format after it)


def pick_chances(store: Store, repo: str, model: str, formats: list[str], draws: int = 10_000) -> dict[str, float]:
    """The share of `draws` of the bandit's own Thompson draws (ThompsonSampler.choose) that each format wins."""
    sampler = ModelBandit(store, rng=random.Random(0)).sampler(repo, "edit_format")
    arms = {format_arm(model, f): f for f in formats}
    wins = Counter(arms[sampler.choose(list(arms)).model] for _ in range(draws))
    return {f: wins[f] / draws for f in formats}


async def series(args: argparse.Namespace, work: Path, server: LlamaServer, alias: str) -> list[Played]:
    """(format, mean reward of its iterations, pick chances after it) per episode, in order."""
    formats = [f.strip() for f in args.edit_formats.split(",")]
    repo, task = task_repo(args, work / "repo")
    settings = Settings(
        _env_file=None, llm_provider="openai", openai_base_url=server.base_url, generator_model=alias,
        discriminator_model=alias, agitator_model=alias, generator_num_ctx=N_CTX, discriminator_num_ctx=N_CTX,
        agitator_num_ctx=N_CTX, max_output_tokens=args.max_output_tokens, max_iterations=args.iterations,
        data_dir=work / "data", edit_format=formats[0], edit_format_choices=formats, sandbox={"backend": "bwrap"},
    )
    store = Store.open(settings.database_url)
    llm = build_llm(settings)
    played: list[Played] = []
    try:
        runner = EpisodeRunner(settings, llm, store=store, learning=True, learn_from_dry_runs=True)
        for number in range(1, args.episodes + 1):
            request = CycleRequest(repo_dir=repo, task=task, dry_run=True, max_iterations=args.iterations)
            result = await runner.run(request)
            chosen = result.preparation.edit_format or formats[0]
            records = result.episode.iterations if result.episode else []
            rewards = [r.reward.value if r.reward else 0.0 for r in records] or [0.0]
            chances = pick_chances(store, request.repo_name, alias, formats)
            played.append((chosen, sum(rewards) / len(rewards), chances))
            print(f"episode {number:>3}: {chosen:<22} reward {played[-1][1]:.2f}  "
                  f"{result.episode.status.value if result.episode else result.error}  next pick chance "
                  + ", ".join(f"{f} {c:.0%}" for f, c in chances.items()), flush=True)
    finally:
        await llm.aclose()
        store.close()
    return played


def print_blocks(played: list[Played], formats: list[str], block: int) -> None:
    print("\n| episodes | " + " | ".join(f"share {f}" for f in formats) + " | mean reward | "
          + " | ".join(f"reward {f}" for f in formats) + " | " + " | ".join(f"pick chance after: {f}" for f in formats)
          + " |")
    print("|---" * (2 + 3 * len(formats)) + "|")
    for start in range(0, len(played), block):
        part = played[start:start + block]
        shares = Counter(f for f, _, _ in part)
        by_format = [[r for f, r, _ in part if f == name] for name in formats]
        print(f"| {start + 1}-{start + len(part)} | "
              + " | ".join(f"{100 * shares[f] / len(part):.0f} %" for f in formats)
              + f" | {sum(r for _, r, _ in part) / len(part):.2f} | "
              + " | ".join(f"{sum(rs) / len(rs):.2f}" if rs else "-" for rs in by_format) + " | "
              + " | ".join(f"{part[-1][2][f]:.0%}" for f in formats) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--max-output-tokens", type=int, default=512)
    parser.add_argument("--model", default="smollm2", help="smollm2, gemma-3-270m, or alias=file.gguf")
    parser.add_argument("--edit-formats", default="json-line-edits,whole-file", help="two or more, comma-separated")
    parser.add_argument("--real-task", metavar="BUNDLE:COMMIT", help="a task of tests/data/realtasks.json instead of the shop")
    args = parser.parse_args()
    formats = [f.strip() for f in args.edit_formats.split(",")]
    if len(set(formats)) < 2:
        parser.error("--edit-formats: give two or more formats for the bandit to choose from")
    if reason := missing():
        print(f"real model unavailable: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="real-model-learning-") as tmp:
        work = Path(tmp)
        alias, path = model_file(args.model)
        server = LlamaServer.start(work / f"{alias}.log", cache=True, model=path, alias=alias)
        try:
            played = asyncio.run(series(args, work, server, alias))
        finally:
            server.stop()
    print_blocks(played, formats, args.block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
