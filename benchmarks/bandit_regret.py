"""Regret of the model-selection bandit against three simulated models of different quality.

Each round the Thompson sampler picks a model; a model of quality q earns a fractional reward drawn
from Beta(4q, 4(1-q)) (mean q, like the cycle's rewards). Regret after n rounds is the sum over rounds
of (best quality - picked quality): what picking blindly costs against always knowing the best model.
Prints regret at several points, the share of picks of the best model in the last 100 rounds, and the
same figures for uniform random picking, averaged over several seeds.

    .venv/bin/python benchmarks/bandit_regret.py [--rounds 500] [--seeds 20] [--qualities 0.3,0.5,0.8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.learning.bandit import simulate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--qualities", default="0.3,0.5,0.8")
    args = parser.parse_args()
    values = [float(q) for q in args.qualities.split(",")]
    qualities = {f"model-{i + 1} (q={q})": q for i, q in enumerate(values)}
    checkpoints = [c for c in (50, 100, 250, 500, 1000, 2000) if c <= args.rounds] or [args.rounds]
    results = [simulate(qualities, args.rounds, seed=seed) for seed in range(args.seeds)]
    best = max(values)
    uniform_per_round = best - statistics.fmean(values)

    print(f"Thompson sampling, {len(values)} models of quality {args.qualities}, {args.rounds} rounds, "
          f"{args.seeds} seeds (seed 0 first)")
    print(f"{'rounds':>8} {'regret (seed 0)':>16} {'regret mean':>12} {'regret max':>11} {'uniform random':>15}")
    for c in checkpoints:
        regrets = [r.regret_at(c) for r in results]
        print(f"{c:>8} {regrets[0]:>16.1f} {statistics.fmean(regrets):>12.1f} {max(regrets):>11.1f} "
              f"{uniform_per_round * c:>15.1f}")
    tail = min(100, args.rounds)
    shares = [r.share_of_best(tail) for r in results]
    print(f"share of picks of the best model in the last {tail} rounds: seed 0 {shares[0]:.2f}, "
          f"mean {statistics.fmean(shares):.2f}, min {min(shares):.2f}")
    picks = results[0].picks
    print("picks per model (seed 0): " + ", ".join(f"{m}: {picks.count(m)}" for m in qualities))
    return 0


if __name__ == "__main__":
    sys.exit(main())
