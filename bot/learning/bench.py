"""Benchmarks of progress, read from the store (the seed's FeedbackBenchmark and AdaptiveFeedbackBenchmark).

- `bench_report`: per-metric means over the scored attempts (optionally of one repository, or touching
  one file), the reward of the first and the last attempt and their difference, and the discriminator's
  five most common issues.
- `bench_compare`: run (or model) B against A, per metric: the difference of means with a 95% bootstrap
  confidence interval (2,000 resamples, a fixed seed, so the same data gives the same interval).
- `challenges`: the toughest tasks (never or rarely approved, lowest best reward, most iterations),
  the ones worth running again.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable

from pydantic import BaseModel, Field

from bot.records import IterationRecord, Task
from bot.store import Store, StoreError
from bot.store.learning import EpisodeAttempts

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261122

MetricFn = Callable[[IterationRecord], float | None]
METRICS: dict[str, MetricFn] = {
    "reward": lambda r: r.reward.value if r.reward else None,
    "pass_rate": lambda r: r.reward.pass_rate if r.reward else None,
    "rubric_score": lambda r: r.reward.rubric_score if r.reward else None,
    "coverage": lambda r: r.rubric.coverage if r.rubric else None,
    "accuracy": lambda r: r.rubric.accuracy if r.rubric else None,
    "coherence": lambda r: r.rubric.coherence if r.rubric else None,
    "formatting": lambda r: r.rubric.formatting if r.rubric else None,
    "tokens": lambda r: float(sum(c.prompt_tokens + c.completion_tokens for c in r.llm_calls)),
}


class MetricMean(BaseModel):
    name: str
    n: int
    mean: float | None


class BenchReport(BaseModel):
    repo: str | None = None
    file: str | None = None
    attempts: int  # iterations considered (each candidate counts)
    scored: int  # of which reached the discriminator and got a reward
    approved: int
    metrics: list[MetricMean]
    reward_first: float | None = None
    reward_last: float | None = None
    reward_delta: float | None = None  # last - first, in time order
    top_issues: list[tuple[str, int]] = Field(default_factory=list)


class MetricDelta(BaseModel):
    name: str
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None  # mean_b - mean_a
    ci_low: float | None = None
    ci_high: float | None = None


class Comparison(BaseModel):
    a: str
    b: str
    metrics: list[MetricDelta]
    resamples: int = BOOTSTRAP_RESAMPLES
    confidence: float = 0.95


class Challenge(BaseModel):
    repo: str
    task: Task
    episodes: int
    approved: int
    best_reward: float | None
    mean_iterations: float
    last_run_id: str


# --- report --------------------------------------------------------------------------------------


def _touches(record: IterationRecord, path: str) -> bool:
    return bool(record.proposal) and any(c.file_path == path for c in record.proposal.changes)  # type: ignore[union-attr]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _issue_key(text: str) -> str:
    return " ".join(text.strip().rstrip(".").split()).lower()


def bench_report(store: Store, *, repo: str | None = None, file: str | None = None, limit: int | None = None) -> BenchReport:
    """Means over the newest `limit` attempts (all when None), oldest first for first → last."""
    records = list(reversed(store.list_iterations(repo=repo, limit=limit)))
    if file is not None:
        records = [r for r in records if _touches(r, file)]
    scored = [r for r in records if r.reward is not None]
    metrics = []
    for name, fn in METRICS.items():
        values = [v for v in map(fn, records if name == "tokens" else scored) if v is not None]
        metrics.append(MetricMean(name=name, n=len(values), mean=_mean(values)))
    issues: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for r in scored:
        for issue in r.rubric.issues if r.rubric else []:
            key = _issue_key(issue)
            if key:
                issues[key] += 1
                shown.setdefault(key, issue.strip())
    first = scored[0].reward.value if scored else None  # type: ignore[union-attr]
    last = scored[-1].reward.value if scored else None  # type: ignore[union-attr]
    return BenchReport(
        repo=repo, file=file, attempts=len(records), scored=len(scored),
        approved=sum(1 for r in scored if r.status == "approved"),
        metrics=metrics, reward_first=first, reward_last=last,
        reward_delta=None if first is None or last is None else last - first,
        top_issues=[(shown[k], n) for k, n in sorted(issues.items(), key=lambda kv: (-kv[1], kv[0]))[:5]],
    )


# --- compare -------------------------------------------------------------------------------------


def bootstrap_ci(
    a: list[float], b: list[float], *, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = 0.95, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(b) - mean(a), resampling each side with replacement."""
    if not a or not b:
        raise ValueError("both samples need at least one value")
    rng = random.Random(seed)
    deltas = sorted(
        statistics.fmean(rng.choices(b, k=len(b))) - statistics.fmean(rng.choices(a, k=len(a))) for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    low = deltas[int(tail * resamples)]
    high = deltas[min(resamples - 1, int((1 - tail) * resamples))]
    return low, high


def select_attempts(store: Store, selector: str, *, repo: str | None = None) -> list[IterationRecord]:
    """`RUN_ID` (a run in the store) or `model:NAME` (every attempt of that generator model)."""
    if selector.startswith("model:"):
        model = selector.removeprefix("model:")
        records = [r for r in store.list_iterations(repo=repo) if r.model == model]
        if not records:
            raise StoreError(f"no attempts by the model {model!r}{f' on {repo}' if repo else ''} in the store")
        return records
    if store.get_run(selector) is None:
        raise StoreError(
            f"unknown run {selector!r}: give a run id (`aura-sicd episodes list` shows them) or model:NAME"
        )
    return store.list_iterations(run_id=selector)


def compare_samples(a_label: str, a: list[IterationRecord], b_label: str, b: list[IterationRecord]) -> Comparison:
    deltas = []
    for name, fn in METRICS.items():
        pick = (lambda rs: rs) if name == "tokens" else (lambda rs: [r for r in rs if r.reward is not None])
        va = [v for v in map(fn, pick(a)) if v is not None]
        vb = [v for v in map(fn, pick(b)) if v is not None]
        mean_a, mean_b = _mean(va), _mean(vb)
        delta = MetricDelta(name=name, n_a=len(va), n_b=len(vb), mean_a=mean_a, mean_b=mean_b,
                            delta=None if mean_a is None or mean_b is None else mean_b - mean_a)
        if va and vb:
            delta.ci_low, delta.ci_high = bootstrap_ci(va, vb)
        deltas.append(delta)
    return Comparison(a=a_label, b=b_label, metrics=deltas)


def bench_compare(store: Store, a: str, b: str, *, repo: str | None = None) -> Comparison:
    return compare_samples(a, select_attempts(store, a, repo=repo), b, select_attempts(store, b, repo=repo))


# --- challenges ----------------------------------------------------------------------------------


def challenges(store: Store, *, repo: str | None = None, limit: int = 10) -> list[Challenge]:
    """Tasks ranked hardest first: lowest approval rate, then lowest best reward, then most iterations."""
    groups: dict[tuple[str, str], list[EpisodeAttempts]] = defaultdict(list)
    for episode in store.episode_attempts(repo=repo):  # oldest first
        groups[(episode.repo, episode.task.text)].append(episode)
    found = []
    for (task_repo, _), episodes in groups.items():
        bests = [e.best_reward for e in episodes if e.best_reward is not None]
        found.append(Challenge(
            repo=task_repo, task=episodes[-1].task, episodes=len(episodes),
            approved=sum(1 for e in episodes if e.status == "approved"),
            best_reward=max(bests) if bests else None, mean_iterations=statistics.fmean(e.iterations for e in episodes),
            last_run_id=episodes[-1].run_id,
        ))
    found.sort(key=lambda c: (c.approved / c.episodes, c.best_reward if c.best_reward is not None else -1.0, -c.mean_iterations))
    return found[:limit]
