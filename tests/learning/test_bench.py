"""Benchmarks of progress on known numbers: report means, first → last, issues; compare with a bootstrap CI; challenges."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bot.learning.bench import bench_compare, bench_report, bootstrap_ci, challenges
from bot.records import EpisodeStatus, Rubric, Task
from bot.store import StoreError
from tests.builders import T0, iteration, proposal, save_episode

REPO = "acme/shop"


def rubric(score: float, *issues: str) -> Rubric:
    return Rubric(coverage=score, accuracy=score, coherence=1.0, formatting=0.5, issues=list(issues))


def fill_run(store, run_id, rewards, *, repo=REPO, path="src/cart.py", issues=(), start=T0, model="gen-a"):
    task = Task(title=f"task of {run_id}", repo=repo)
    records = [
        iteration(run_id, f"{run_id}-e", i + 1, reward=r, model=model, prop=proposal(path, "a", f"b{i}"),
                  rubric=rubric(r, *(issues[i] if i < len(issues) else ())), at=start + timedelta(minutes=i))
        for i, r in enumerate(rewards)
    ]
    save_episode(store, run_id, f"{run_id}-e", task, records, status=EpisodeStatus.EXHAUSTED, at=start)


def test_report_gives_exact_means_first_to_last_and_top_issues(store):
    fill_run(store, "r1", [0.2, 0.4, 0.5], issues=[["Missing test."], ["missing test", "Off by one"], ["Off by one."]])
    fill_run(store, "r2", [0.6, 0.8], path="src/tax.py", issues=[["Off by one"], ["Unused import", "Typo", "Bad name", "Slow"]],
             start=T0 + timedelta(hours=1))
    fill_run(store, "r3", [0.9], repo="other/repo", start=T0 + timedelta(hours=2))

    report = bench_report(store, repo=REPO)
    means = {m.name: m.mean for m in report.metrics}
    assert (report.attempts, report.scored, report.approved) == (5, 5, 1)  # 0.8 >= 0.75 is approved
    assert means["reward"] == pytest.approx((0.2 + 0.4 + 0.5 + 0.6 + 0.8) / 5)
    assert means["coverage"] == pytest.approx(0.5) and means["formatting"] == 0.5 and means["coherence"] == 1.0
    assert means["tokens"] == 120.0
    assert (report.reward_first, report.reward_last) == (0.2, 0.8)
    assert report.reward_delta == pytest.approx(0.6)
    assert report.top_issues[:2] == [("Off by one", 3), ("Missing test.", 2)]
    assert len(report.top_issues) == 5

    by_file = bench_report(store, repo=REPO, file="src/tax.py")
    assert by_file.attempts == 2 and by_file.reward_delta == pytest.approx(0.2)
    newest = bench_report(store, limit=2)  # the two newest attempts of any repository
    assert (newest.reward_first, newest.reward_last) == (0.8, 0.9)
    empty = bench_report(store, repo="nobody/here")
    assert empty.attempts == 0 and empty.reward_delta is None and {m.mean for m in empty.metrics} == {None}


def test_compare_runs_exact_delta_inside_the_interval(store):
    base = [0.2, 0.4, 0.6, 0.3, 0.5, 0.45, 0.35, 0.55]
    fill_run(store, "before", base)
    fill_run(store, "after", [v + 0.2 for v in base], start=T0 + timedelta(hours=1))

    comparison = bench_compare(store, "before", "after")
    reward = next(m for m in comparison.metrics if m.name == "reward")
    assert reward.mean_a == pytest.approx(0.41875) and reward.mean_b == pytest.approx(0.61875)
    assert reward.delta == pytest.approx(0.2)
    assert reward.ci_low < 0.2 < reward.ci_high
    assert reward.ci_low > 0  # a clear improvement: the interval excludes 0
    tokens = next(m for m in comparison.metrics if m.name == "tokens")
    assert tokens.delta == 0.0
    # the same data gives the same interval
    again = next(m for m in bench_compare(store, "before", "after").metrics if m.name == "reward")
    assert (again.ci_low, again.ci_high) == (reward.ci_low, reward.ci_high)


def test_bootstrap_interval_covers_the_true_difference_of_known_distributions():
    rng = random.Random(7)
    a = [rng.gauss(0.5, 0.1) for _ in range(60)]
    b = [rng.gauss(0.65, 0.1) for _ in range(60)]
    low, high = bootstrap_ci(a, b)
    assert low < 0.15 < high and high - low < 0.12
    with pytest.raises(ValueError):
        bootstrap_ci([], b)


def test_compare_by_model_and_unknown_selectors(store):
    fill_run(store, "r1", [0.3, 0.4], model="small")
    fill_run(store, "r2", [0.7, 0.9], model="large", start=T0 + timedelta(hours=1))
    reward = next(m for m in bench_compare(store, "model:small", "model:large").metrics if m.name == "reward")
    assert reward.delta == pytest.approx(0.45)
    with pytest.raises(StoreError, match="unknown run 'nope'"):
        bench_compare(store, "nope", "r1")
    with pytest.raises(StoreError, match="no attempts by the model 'medium'"):
        bench_compare(store, "model:medium", "r1")


def test_challenges_rank_unsolved_low_reward_long_tasks_first(store):
    task_hard, task_mid, task_easy = (Task(title=t, repo=REPO) for t in ("hard", "mid", "easy"))
    for run_id, task, rewards, status in [
        ("h1", task_hard, [0.1, 0.2, 0.2], EpisodeStatus.EXHAUSTED),
        ("h2", task_hard, [0.3, 0.3, 0.3], EpisodeStatus.EXHAUSTED),
        ("m1", task_mid, [0.5, 0.6], EpisodeStatus.EXHAUSTED),
        ("e1", task_easy, [0.9], EpisodeStatus.APPROVED),
    ]:
        save_episode(store, run_id, f"{run_id}-e", task,
                     [iteration(run_id, f"{run_id}-e", i + 1, reward=r) for i, r in enumerate(rewards)], status=status)

    found = challenges(store, repo=REPO)
    assert [c.task.title for c in found] == ["hard", "mid", "easy"]
    hard = found[0]
    assert (hard.episodes, hard.approved, hard.best_reward, hard.mean_iterations, hard.last_run_id) == (2, 0, 0.3, 3.0, "h2")
    assert len(challenges(store, limit=1)) == 1
