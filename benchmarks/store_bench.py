"""Store latency: the cycle's writes (episode and iteration upserts) and the learning layer's reads.

Fills a fresh database with a realistic history (full iteration records with check reports), then times
each call many times and prints p50/p99 in milliseconds.

    .venv/bin/python benchmarks/store_bench.py [--episodes 500] [--url postgresql+psycopg://...]

Without --url it uses a SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bot"))

from test_store import episode, iteration  # noqa: E402  (the tests' full records)

from bot.records import EpisodeStatus, GuidanceEntry  # noqa: E402
from bot.store import Store, export_episodes  # noqa: E402
from bot.store.engine import migrate  # noqa: E402


def timed(label: str, calls: int, fn: Callable[[int], object]) -> None:
    samples = []
    for n in range(calls):
        start = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{label:<44} {calls:>6} calls  p50 {statistics.median(samples):7.2f} ms  p99 {p99:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--url", help="database URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.db"
        if args.url:
            with Store(url) as clean:
                migrate(clean.engine, "base", downgrade=True)
        start = time.perf_counter()
        store = Store.open(url)
        print(f"backend: {store.engine.dialect.name}; open + migrate: {(time.perf_counter() - start) * 1000:.0f} ms")
        store.create_run("bench", kind="training", repo="o/r")

        def cycle_episode(n: int) -> None:  # what the cycle does for one 3-iteration episode
            ep = episode("bench", f"e{n}", n + 1, status=EpisodeStatus.RUNNING, iterations=0)
            store.save_episode(ep)
            for number in (1, 2, 3):
                record = iteration("bench", ep.episode_id, number)
                store.save_iteration(record)
                ep.iterations.append(record)
                store.save_episode(ep)
            ep.status = EpisodeStatus.EXHAUSTED
            store.save_episode(ep)

        timed("episode: 5 episode saves + 3 iteration saves", args.episodes, cycle_episode)
        record = iteration("bench", "e0", 1)
        timed("save_iteration (upsert, full record)", 200, lambda n: store.save_iteration(record))
        for n in range(2000):
            entry = GuidanceEntry(source="review", text=f"note {n}", path=f"src/m{n % 50}.py")
            store.add_guidance("o/r", entry, run_id="bench")
        timed("add_guidance", 200, lambda n: store.add_guidance("o/r", GuidanceEntry(source="agitator", text="x")))
        timed("audit", 200, lambda n: store.audit(actor="policy", action="a", subject="s", decision="allowed"))
        timed("get_episode (3 iterations)", 200, lambda n: store.get_episode("bench", f"e{n % args.episodes}"))
        timed(f"run_summary ({args.episodes} episodes)", 200, lambda n: store.run_summary("bench"))
        timed("list_guidance(repo, path) of 2,200", 200, lambda n: store.list_guidance("o/r", path="src/m7.py"))
        timed("list_iterations(repo, limit=50)", 100, lambda n: store.list_iterations(repo="o/r", limit=50))
        timed("list_episode_summaries", 50, lambda n: store.list_episode_summaries("bench"))
        start = time.perf_counter()
        paths = export_episodes(store, "bench", Path(tmp) / "export")
        print(f"export_episodes: {len(paths)} files in {(time.perf_counter() - start) * 1000:.0f} ms")
        store.close()


if __name__ == "__main__":
    main()
