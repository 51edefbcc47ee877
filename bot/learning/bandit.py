"""Model selection: a Thompson-sampling bandit per repository and role.

When several models are configured for a role (`AURA_GENERATOR_MODELS`), each is an arm with a Beta
posterior. Edit formats are one more choice (`AURA_EDIT_FORMAT_CHOICES`): the role "edit_format" has an
arm per generator model and format, "<model>|<format>", fed by the iterations that model wrote in that
format: their rewards, at least APPLIED_CREDIT when the edit applied, and 0 when the reply did not parse
or its edits did not apply. Evidence comes from the store, so the bandit has no state of its own and survives restarts:

- every iteration with a reward in [0, 1] is a fractional success for the model that played the role
  in it (alpha += r, beta += 1 - r); an attempt whose generator reply was unusable (no reward, status
  failed) counts as 0 for the generator;
- a bot pull request merged by a human counts as a success, one closed unmerged as a failure, each
  with weight `human_feedback_weight` (3 by default), given to the models of the run's chosen attempt.

To pick, draw one sample from each posterior and take the largest: a model is tried about as often as
it could be the best one. Only the newest `window` iterations count, so a model that got better (or a
repository that changed) is noticed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, Field

from bot.records import IterationRecord, IterationStatus
from bot.store import Store
from bot.store.github import GitHubStore, HumanFeedback


class Arm(BaseModel):
    model: str
    alpha: float = 1.0
    beta: float = 1.0
    observations: float = 0.0  # total weight of the evidence

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class Choice(BaseModel):
    model: str
    samples: dict[str, float] = Field(default_factory=dict)
    arms: list[Arm] = Field(default_factory=list)


class ThompsonSampler:
    """Beta-Bernoulli Thompson sampling over named arms, with fractional and weighted rewards."""

    def __init__(self, *, prior: tuple[float, float] = (1.0, 1.0), rng: random.Random | None = None) -> None:
        self.prior = prior
        self.rng = rng or random.Random()
        self.arms: dict[str, Arm] = {}

    def arm(self, model: str) -> Arm:
        if model not in self.arms:
            self.arms[model] = Arm(model=model, alpha=self.prior[0], beta=self.prior[1])
        return self.arms[model]

    def update(self, model: str, reward: float, weight: float = 1.0) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"a reward must lie in [0, 1], got {reward}")
        arm = self.arm(model)
        arm.alpha += weight * reward
        arm.beta += weight * (1.0 - reward)
        arm.observations += weight

    def choose(self, candidates: Sequence[str]) -> Choice:
        models = list(dict.fromkeys(candidates))
        if not models:
            raise ValueError("choose needs at least one candidate model")
        samples = {m: self.rng.betavariate(self.arm(m).alpha, self.arm(m).beta) for m in models}
        best = max(models, key=lambda m: samples[m])  # ties: the first listed
        return Choice(model=best, samples=samples, arms=[self.arm(m) for m in models])


class ModelBandit:
    """Picks a model per repository and role from the evidence in the store."""

    def __init__(
        self,
        store: Store,
        *,
        human_feedback_weight: float = 3.0,
        window: int = 1000,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.human_feedback_weight = human_feedback_weight
        self.window = window
        self.rng = rng or random.Random()

    def sampler(self, repo: str, role: str) -> ThompsonSampler:
        """A sampler holding the posteriors of every model seen in that role on the repository."""
        sampler = ThompsonSampler(rng=self.rng)
        iterations = self.store.list_iterations(repo=repo, limit=self.window)
        for record in iterations:
            for model, reward in _observations(record, role):
                sampler.update(model, reward)
        if self.human_feedback_weight > 0:
            for feedback in GitHubStore(self.store).list_feedback(repo=repo, limit=self.window):
                for model in self._models_behind(feedback, role):
                    sampler.update(model, 1.0 if feedback.merged else 0.0, self.human_feedback_weight)
        return sampler

    def posteriors(self, repo: str, role: str, candidates: Sequence[str]) -> list[Arm]:
        sampler = self.sampler(repo, role)
        return [sampler.arm(m) for m in dict.fromkeys(candidates)]

    def choose_detailed(self, repo: str, role: str, candidates: Sequence[str]) -> Choice:
        models = list(dict.fromkeys(candidates))
        if len(models) == 1:
            return Choice(model=models[0])
        return self.sampler(repo, role).choose(models)

    def choose(self, repo: str, role: str, candidates: Sequence[str]) -> str:
        return self.choose_detailed(repo, role, candidates).model

    def _models_behind(self, feedback: HumanFeedback, role: str) -> set[str]:
        """The models that played `role` in the attempt a pull request carried."""
        if not feedback.run_id:
            return set()
        records = [r for r in self.store.list_iterations(run_id=feedback.run_id) if r.reward is not None]
        if not records:
            return set()
        approved = [r for r in records if r.status is IterationStatus.APPROVED]
        chosen = approved or [max(records, key=lambda r: r.reward.value if r.reward else 0.0)]
        return {model for r in chosen for model, _ in _observations(r, role)}


# An edit format's own job is an edit that applies: one that applied counts at least this much, however it
# fared, so a weak model whose every attempt earns 0 still learns which format gets its edits to the checks.
# A wrong edit whose tests run earns more than this from its pass rate alone (weight 0.7), so the floor only
# counts for attempts that broke the build or dodged their tests.
APPLIED_CREDIT = 0.25


def format_arm(model: str, edit_format: str) -> str:
    return f"{model}|{edit_format}"


def _observations(record: IterationRecord, role: str) -> list[tuple[str, float]]:
    """(model, reward) pairs one iteration gives about `role` ("model|format" pairs for "edit_format")."""
    if role == "edit_format":
        if not record.model or not record.edit_format:
            return []
        arm = format_arm(record.model, record.edit_format)
        if record.reward is not None:  # the edit applied and was judged
            return [(arm, max(record.reward.value, APPLIED_CREDIT))]
        if record.status is IterationStatus.FAILED and (record.proposal is None or record.apply_error):
            return [(arm, 0.0)]  # the reply did not parse, or its edits did not apply
        return []
    if record.reward is not None:
        if role == "generator" and record.model:
            return [(record.model, record.reward.value)]
        return [(m, record.reward.value) for m in dict.fromkeys(c.model for c in record.llm_calls if c.role == role)]
    if role == "generator" and record.model and record.status is IterationStatus.FAILED and record.proposal is None:
        return [(record.model, 0.0)]  # the model's reply was unusable
    return []


# --- simulation (tests and benchmarks/bandit_regret.py) -----------------------------------------


class SimulationResult(BaseModel):
    qualities: dict[str, float]
    picks: list[str]
    cumulative_regret: list[float]  # after each round: sum of (best quality - picked quality)

    @property
    def best(self) -> str:
        return max(self.qualities, key=self.qualities.__getitem__)

    def share_of_best(self, last: int) -> float:
        tail = self.picks[-last:]
        return sum(1 for p in tail if p == self.best) / len(tail)

    def regret_at(self, round_number: int) -> float:
        return self.cumulative_regret[round_number - 1]


def simulate(qualities: dict[str, float], rounds: int, *, seed: int = 0, concentration: float = 4.0) -> SimulationResult:
    """Thompson sampling against simulated models: a model of quality q earns a reward drawn from
    Beta(q*c, (1-q)*c), fractional with mean q, like the cycle's rewards."""
    rng = random.Random(seed)
    sampler = ThompsonSampler(rng=rng)
    best = max(qualities.values())
    picks: list[str] = []
    regret: list[float] = []
    total = 0.0
    for _ in range(rounds):
        model = sampler.choose(list(qualities)).model
        q = qualities[model]
        sampler.update(model, rng.betavariate(q * concentration, (1 - q) * concentration))
        total += best - q
        picks.append(model)
        regret.append(total)
    return SimulationResult(qualities=dict(qualities), picks=picks, cumulative_regret=regret)
