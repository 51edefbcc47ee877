"""Model selection: Thompson sampling converges in simulation and reads its evidence from the store."""

from __future__ import annotations

import random

import pytest

from bot.learning.bandit import ModelBandit, ThompsonSampler, simulate
from bot.records import EpisodeStatus, IterationStatus, LLMCall, Task
from bot.store.github import GitHubStore, HumanFeedback
from tests.builders import iteration, proposal, save_episode

REPO = "acme/shop"
QUALITIES = {"small": 0.3, "medium": 0.5, "large": 0.8}


def test_simulation_converges_to_the_best_model_with_low_regret():
    result = simulate(QUALITIES, 500, seed=0)

    share = result.share_of_best(100)
    uniform_regret = 500 * (0.8 - (0.3 + 0.5 + 0.8) / 3)  # what picking at random costs: 133.3
    print(f"\nshare of best in last 100: {share:.2f}; regret at 100/250/500: "
          f"{result.regret_at(100):.1f}/{result.regret_at(250):.1f}/{result.regret_at(500):.1f} "
          f"(uniform random: {uniform_regret:.1f})")
    assert result.best == "large"
    assert share > 0.8
    assert result.regret_at(500) < 0.15 * uniform_regret
    # regret grows ever more slowly: the last 250 rounds cost less than the first 250
    assert result.regret_at(500) - result.regret_at(250) < result.regret_at(250)


@pytest.mark.parametrize("seed", range(1, 6))
def test_convergence_holds_across_seeds(seed):
    assert simulate(QUALITIES, 500, seed=seed).share_of_best(100) > 0.8


def test_sampler_refuses_rewards_outside_the_unit_interval_and_empty_candidates():
    sampler = ThompsonSampler(rng=random.Random(0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sampler.update("m", 1.5)
    with pytest.raises(ValueError, match="at least one candidate"):
        sampler.choose([])


def test_fractional_and_weighted_updates():
    sampler = ThompsonSampler(rng=random.Random(0))
    sampler.update("m", 0.75)
    sampler.update("m", 1.0, weight=3.0)
    arm = sampler.arm("m")
    assert (arm.alpha, arm.beta, arm.observations) == (1 + 0.75 + 3.0, 1 + 0.25, 4.0)


def test_posteriors_come_from_iteration_rewards_per_role_and_repository(store):
    task = Task(title="t", repo=REPO)
    agitator_call = [LLMCall(role="agitator", model="coach-1")]
    save_episode(store, "r1", "e1", task, [
        iteration("r1", "e1", 1, reward=0.25, model="gen-a", prop=proposal("a.py", "x", "y"), extra_calls=agitator_call),
        iteration("r1", "e1", 2, reward=0.75, model="gen-b", prop=proposal("a.py", "x", "z")),
        iteration("r1", "e1", 3, reward=None, model="gen-a", status=IterationStatus.FAILED),  # unusable reply
    ], status=EpisodeStatus.APPROVED)
    save_episode(store, "r2", "e2", Task(title="t", repo="other/repo"),
                 [iteration("r2", "e2", 1, reward=1.0, model="gen-a", prop=proposal("a.py", "x", "y"))],
                 status=EpisodeStatus.APPROVED)

    bandit = ModelBandit(store, rng=random.Random(0))
    arms = {a.model: a for a in bandit.posteriors(REPO, "generator", ["gen-a", "gen-b", "gen-c"])}
    assert (arms["gen-a"].alpha, arms["gen-a"].beta) == (1.25, 2.75)  # 0.25, then 0 for the unusable reply
    assert (arms["gen-b"].alpha, arms["gen-b"].beta) == (1.75, 1.25)
    assert (arms["gen-c"].alpha, arms["gen-c"].beta, arms["gen-c"].observations) == (1.0, 1.0, 0.0)
    coach = bandit.posteriors(REPO, "agitator", ["coach-1"])[0]
    assert (coach.alpha, coach.beta) == (1.25, 1.75)


def test_human_feedback_counts_with_its_weight(store):
    task = Task(title="t", repo=REPO)
    save_episode(store, "merged-run", "e1", task,
                 [iteration("merged-run", "e1", 1, reward=0.8, model="gen-a", prop=proposal("a.py", "x", "y"))],
                 status=EpisodeStatus.APPROVED)
    save_episode(store, "closed-run", "e2", task,
                 [iteration("closed-run", "e2", 1, reward=0.8, model="gen-b", prop=proposal("a.py", "x", "z"))],
                 status=EpisodeStatus.APPROVED)
    github = GitHubStore(store)
    github.record_feedback(HumanFeedback(delivery_id="d1", repo=REPO, number=1, merged=True, run_id="merged-run"))
    github.record_feedback(HumanFeedback(delivery_id="d2", repo=REPO, number=2, merged=False, run_id="closed-run"))

    arms = {a.model: a for a in ModelBandit(store, human_feedback_weight=3.0).posteriors(REPO, "generator", ["gen-a", "gen-b"])}
    assert (arms["gen-a"].alpha, arms["gen-a"].beta) == pytest.approx((1 + 0.8 + 3, 1 + 0.2))
    assert (arms["gen-b"].alpha, arms["gen-b"].beta) == pytest.approx((1 + 0.8, 1 + 0.2 + 3))
    # with equal rewards, the merged model is picked far more often
    bandit = ModelBandit(store, rng=random.Random(1))
    picks = [bandit.choose(REPO, "generator", ["gen-a", "gen-b"]) for _ in range(200)]
    assert picks.count("gen-a") > 150


def test_a_single_candidate_is_returned_without_sampling(store):
    assert ModelBandit(store).choose(REPO, "generator", ["only", "only"]) == "only"


async def test_edit_formats_are_arms_per_model_and_the_choice_reaches_the_settings(store):
    from bot.config import Settings
    from bot.learning.prepare import prepare_episode

    task = Task(title="t", repo=REPO)
    save_episode(store, "r1", "e1", task, [
        iteration("r1", "e1", 1, reward=None, model="gen-a", status=IterationStatus.FAILED, edit_format="json-search-replace"),
        iteration("r1", "e1", 2, reward=0.9, model="gen-a", prop=proposal("a.py", "x", "y"), edit_format="whole-file"),
        iteration("r1", "e1", 3, reward=0.1, model="gen-b", prop=proposal("a.py", "x", "z"), edit_format="whole-file"),
    ], status=EpisodeStatus.APPROVED)

    bandit = ModelBandit(store, rng=random.Random(0))
    arms = {a.model: a for a in bandit.posteriors(REPO, "edit_format", ["gen-a|json-search-replace", "gen-a|whole-file"])}
    assert (arms["gen-a|json-search-replace"].alpha, arms["gen-a|json-search-replace"].beta) == (1.0, 2.0)
    assert (arms["gen-a|whole-file"].alpha, arms["gen-a|whole-file"].beta) == (1.9, 1.1)  # gen-b's 0.1 is not gen-a's

    settings = Settings(_env_file=None, generator_model="gen-a", edit_format_choices=["json-search-replace", "whole-file"])
    picks = [(await prepare_episode(settings, store, REPO, task, bandit=ModelBandit(store, rng=random.Random(seed)))).edit_format
             for seed in range(20)]
    assert set(picks) <= {"json-search-replace", "whole-file"} and picks.count("whole-file") > picks.count("json-search-replace")
    single = Settings(_env_file=None, generator_model="gen-a")
    assert (await prepare_episode(single, store, REPO, task)).edit_format is None  # no choices: the settings decide


def test_an_edit_format_whose_edits_apply_beats_one_whose_replies_do_not_when_every_reward_is_0(store):
    """A tiny model earns 0 in both formats (python-slugify with SmolLM2: its json-line-edits broke test.py,
    its whole-file replies were cut off at the token limit); the format that reached the checks still counts."""
    from bot.learning.bandit import APPLIED_CREDIT

    task = Task(title="t", repo=REPO)
    save_episode(store, "r1", "e1", task, [
        iteration("r1", "e1", 1, reward=0.0, model="tiny", prop=proposal("a.py", "x", "y"), edit_format="json-line-edits"),
        iteration("r1", "e1", 2, reward=None, model="tiny", status=IterationStatus.FAILED, edit_format="whole-file"),
        iteration("r1", "e1", 3, reward=None, model="tiny", status=IterationStatus.FAILED, prop=proposal("a.py", "q", "z"),
                  apply_error="a.py: the search text was not found", edit_format="whole-file"),
        iteration("r1", "e1", 4, reward=None, model="tiny", status=IterationStatus.FAILED, prop=proposal("a.py", "x", "y"),
                  error="policy: too many files", edit_format="json-line-edits"),  # the policy's refusal: no evidence
        iteration("r1", "e1", 5, reward=0.8, model="tiny", prop=proposal("a.py", "x", "w"), edit_format="json-line-edits"),
    ], status=EpisodeStatus.EXHAUSTED)

    arms = {a.model: a for a in ModelBandit(store).posteriors(REPO, "edit_format", ["tiny|json-line-edits", "tiny|whole-file"])}
    assert (arms["tiny|json-line-edits"].alpha, arms["tiny|json-line-edits"].observations) == (1 + APPLIED_CREDIT + 0.8, 2)
    assert (arms["tiny|whole-file"].alpha, arms["tiny|whole-file"].beta) == (1.0, 3.0)
    generator = ModelBandit(store).posteriors(REPO, "generator", ["tiny"])[0]
    assert generator.alpha == 1 + 0.8  # the generator's own evidence keeps the plain rewards
