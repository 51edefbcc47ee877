"""The cycle's steps: each a function with serializable inputs and outputs, called through a `StepRunner`.

Inline on the command line; as durable DBOS steps in the GitHub App (bot/jobs/workflow.py), where a
step's recorded output is returned on replay instead of running it again. `CycleSteps` holds the steps
(checkout, generate, apply, baseline, check, judge, reproduce, score, reward, guide, remember, commit) and
nothing of the loop: `bot/cycle/loop.py` holds the loop, which owns a `CycleSteps` and calls them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, Field

from bot.cycle.baseline import Baseline, Comparison, baseline_cache_file, reproduced_tests, save_baseline
from bot.cycle.judging import Judgment, judge_attempt
from bot.cycle.gate import GatedCheck, gated_check
from bot.cycle.impact import select_tests
from bot.config import Settings
from bot.context import RepoIndex
from bot.edits import AppliedChange, EditError, apply_changes
from bot.llm.client import InvalidModelOutput, ModelClient, PromptTooLarge
from bot.cycle.policy import Policy
from bot.records import (
    AgitatorGuidance,
    Candidate,
    GuidanceEntry,
    IterationRecord,
    LLMCall,
    PolicyDecision,
    Proposal,
    Reward,
    Rubric,
    Task,
    proposal_id_for,
)
from bot.cycle.reward import compute_reward
from bot.edit_formats import edit_format_for
from bot.roles.agitator import Agitator
from bot.roles.discriminator import Discriminator
from bot.roles.generator import Generator, PromptBudget, generator_context
from bot.workspace import (
    Workspace, apply_diff, commit_diff, create_worktree, reset_worktree, worktree_diff, worktrees_dir_for,
)
from sandbox.config import SandboxSettings
from sandbox.reports import CheckReport
from sandbox.selection import TestSelection

log = logging.getLogger(__name__)
T = TypeVar("T")


class StepRunner(Protocol):
    async def __call__(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...


async def run_inline(name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


class SandboxBox(Protocol):
    backend_name: str

    async def check(self, workdir: Path, *, selection: TestSelection | None = None) -> CheckReport: ...


def _language(box: SandboxBox) -> str:
    """The box's plan's language ("" for a box without a plan: a stand-in runs every check itself)."""
    plan = getattr(box, "plan", None)
    return plan.language if plan is not None else ""


SandboxOpener = Callable[[SandboxSettings, Path], AbstractAsyncContextManager[SandboxBox]]


class CycleRequest(BaseModel):
    """Everything one episode needs; serializable, so a durable job can carry it."""

    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    episode_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    episode_number: int = 1
    repo_dir: Path  # a local checkout or a bare mirror; never modified but for the branch
    repo: str = ""  # name used in the store ("owner/name"); defaults to the directory name
    task: Task
    base_ref: str = "HEAD"
    branch: str | None = None  # continue this existing bot branch (a PR iteration) instead of a new one
    trusted_ref: str | None = None  # the check plan, setup and baseline come from here (bot/cycle/trusted.py); None: base
    guidance: list[GuidanceEntry] = Field(default_factory=list)  # human guidance and memory, oldest first
    max_iterations: int | None = None
    dry_run: bool = False  # everything but the commit: the branch is removed at the end
    kind: str = "cli"  # the run's kind in the store: cli | github | training | eval
    commit_best_on_exhaustion: bool = False  # keep the best attempt as a commit (for a draft PR)

    @property
    def repo_name(self) -> str:
        """The repository's one name in the store (runs, episodes, iterations, guidance memory, the bandit's
        evidence): `repo`, else the task's, else the checkout's directory name."""
        return self.repo or self.task.repo or Path(self.repo_dir).resolve().name


class GenerateOutcome(BaseModel):
    proposal: Proposal | None = None
    calls: list[LLMCall] = Field(default_factory=list)
    error: str | None = None
    guidance: list[GuidanceEntry] = Field(default_factory=list)  # what the generator was shown
    context_tokens: int = 0
    messages: list[dict[str, str]] = Field(default_factory=list)  # the generator's prompt, for training data
    llm_ms: float = 0.0
    edit_format: str | None = None


class ApplyOutcome(BaseModel):
    policy: PolicyDecision
    applied: list[AppliedChange] = Field(default_factory=list)
    error: str | None = None
    diff: str = ""


class ScoreOutcome(BaseModel):
    rubric: Rubric | None = None
    calls: list[LLMCall] = Field(default_factory=list)
    error: str | None = None
    llm_ms: float = 0.0


class GuideOutcome(BaseModel):
    guidance: AgitatorGuidance | None = None
    calls: list[LLMCall] = Field(default_factory=list)
    error: str | None = None


def candidates_for(settings: Settings) -> list[Candidate]:
    """K candidates per iteration: the configured ensemble models ("model" or "model@temperature"), then
    the generator model at rising temperatures."""
    out: list[Candidate] = []
    for spec in settings.ensemble_models:
        model, _, temp = spec.partition("@")
        out.append(Candidate(model=model, temperature=float(temp) if temp else settings.generator_temperature))
    step = 0
    while len(out) < settings.ensemble_size:
        out.append(Candidate(model=settings.generator_model, temperature=min(1.0, settings.generator_temperature + 0.3 * step)))
        step += 1
    return out[: max(1, settings.ensemble_size)] or [
        Candidate(model=settings.generator_model, temperature=settings.generator_temperature)
    ]


class CycleSteps:
    """The steps of one iteration, with what they need: settings, the model client, the policy, the store
    (audit and guidance memory)."""

    def __init__(
        self,
        settings: Settings,
        llm: ModelClient,
        *,
        store: Any | None = None,  # bot.store.Store; optional so the cycle runs without a database
        policy: Policy | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.policy = policy or Policy.from_settings(settings)
        # the generator's budget per (task, model, edit format, window), fixed at its first attempt: the token
        # counter calibrates from the server's counts after each request, and a budget that moved would rebuild
        # the task's part of the prompt differently, so a prompt cache could not reuse it in later attempts
        self.generator_budgets: dict[tuple[str, str, str, int], PromptBudget] = {}

    # --- the steps: serializable in, serializable out ------------------------------------------

    async def checkout(self, req: CycleRequest) -> Workspace:
        base = req.branch or req.base_ref
        proposal_id = (
            req.branch.removeprefix("aura-sicd/") if req.branch else proposal_id_for(req.run_id, req.episode_id, req.task.text)
        )
        return await asyncio.to_thread(
            create_worktree,
            Path(req.repo_dir),
            base_ref=base,
            branch=req.branch or f"aura-sicd/{proposal_id}",
            proposal_id=proposal_id,
            worktrees_dir=worktrees_dir_for(self.settings.data_dir, req.repo, Path(req.repo_dir)),
            existing_branch=req.branch is not None,
        )

    async def generate(
        self, task: Task, index: RepoIndex, history: list[GuidanceEntry], previous: IterationRecord | None, cand: Candidate
    ) -> GenerateOutcome:
        s = self.settings
        num_ctx = await self.llm.for_role("generator").context_window(cand.model, s.generator_num_ctx)
        edit_format = edit_format_for(s, cand.model)
        generator = Generator(
            self.llm, model=cand.model, num_ctx=num_ctx, max_output_tokens=s.max_output_tokens,
            temperature=cand.temperature, edit_format=edit_format, read_file=index.text,
        )
        budget = self.generator_budgets.setdefault((task.text, cand.model, edit_format, num_ctx), generator.budget(task))
        # the task's part first, the attempt's after it: servers with a prompt cache reuse the start
        context = await asyncio.to_thread(generator_context, index, task, previous, budget, history)
        guidance = context.guidance
        started = time.perf_counter()
        try:
            proposal, calls = await generator.propose(task, context.task_part, guidance, context.attempt_part)
        except (InvalidModelOutput, PromptTooLarge) as exc:
            proposal, calls, error = None, getattr(exc, "calls", []), str(exc)
        else:
            error = None
        return GenerateOutcome(
            proposal=proposal, calls=calls, error=error, guidance=guidance, context_tokens=context.tokens,
            messages=generator.last_messages, llm_ms=(time.perf_counter() - started) * 1000, edit_format=edit_format,
        )

    async def apply(self, ws: Workspace, proposal: Proposal, run_id: str, subject: str) -> ApplyOutcome:
        """Policy first (audited), then the edits; a refused proposal is never applied."""

        def work() -> ApplyOutcome:
            reset_worktree(ws)
            decision = self.policy.evaluate(proposal, ws.path)
            self._audit_policy(run_id, subject, proposal, decision)
            if not decision.allowed:
                return ApplyOutcome(policy=decision)
            try:
                applied = apply_changes(ws.path, proposal.changes)
            except EditError as exc:
                return ApplyOutcome(policy=decision, error=str(exc))
            return ApplyOutcome(policy=decision, applied=applied, diff=worktree_diff(ws))

        return await asyncio.to_thread(work)

    async def baseline(self, ws: Workspace, box: SandboxBox) -> Baseline | None:
        """The checks on the unmodified base, once per base commit and sandbox settings (cached on disk)."""
        if not self.settings.baseline:
            return None
        cached = baseline_cache_file(self.settings, ws.base_sha)
        if cached.is_file():
            try:
                return Baseline.model_validate_json(cached.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("ignoring an unreadable baseline cache file %s", cached)
        await asyncio.to_thread(reset_worktree, ws)
        baseline = Baseline.of(ws.base_sha, await box.check(ws.path))
        save_baseline(self.settings, baseline)
        return baseline

    async def reproduce(self, ws: Workspace, diff: str, test_files: list[str], baseline: Baseline,
                        report: CheckReport, box: SandboxBox) -> list[str]:
        """The attempt's tests on the base code: which fail there and pass with the change."""
        await asyncio.to_thread(apply_diff, ws, diff, only=test_files)
        if _language(box) == "python":  # only the attempt's test files matter here
            tests_on_base = await box.check(ws.path, selection=TestSelection(paths=test_files))
        else:
            tests_on_base = await box.check(ws.path)
        return reproduced_tests(baseline, tests_on_base, report, test_files)

    async def check(self, ws: Workspace, diff: str, box: SandboxBox, task_text: str = "",
                    baseline: Baseline | None = None) -> GatedCheck:
        """The tests the attempt can affect first, then the full suite as the gate (bot/cycle/gate.py)."""
        await asyncio.to_thread(apply_diff, ws, diff)  # the attempt's exact state, also after a restart
        selection = await asyncio.to_thread(select_tests, ws.path, _language(box), diff, task_text, baseline)
        return await gated_check(box, ws.path, selection, baseline, task_text,
                                 min_suite_s=self.settings.test_impact_min_suite_s)

    async def judge(self, ws: Workspace, diff: str, task: Task, baseline: Baseline, report: CheckReport,
                    box: SandboxBox) -> Judgment:
        """The attempt's tests judged: what stopped running, tampering, and the tests as the base had them."""
        return await judge_attempt(ws, diff, task.text, baseline, report, box)

    async def score(self, task: Task, diff: str, report: CheckReport, notes: str = "") -> ScoreOutcome:
        s = self.settings
        num_ctx = await self.llm.for_role("discriminator").context_window(s.discriminator_model, s.discriminator_num_ctx)
        disc = Discriminator(self.llm, model=s.discriminator_model, num_ctx=num_ctx, max_output_tokens=min(s.max_output_tokens, 1024))
        started = time.perf_counter()
        try:
            rubric, calls = await disc.score(task, diff, report.summary() + notes)
        except (InvalidModelOutput, PromptTooLarge) as exc:
            return ScoreOutcome(calls=getattr(exc, "calls", []), error=str(exc), llm_ms=(time.perf_counter() - started) * 1000)
        return ScoreOutcome(rubric=rubric, calls=calls, llm_ms=(time.perf_counter() - started) * 1000)

    def reward(
        self, report: CheckReport, rubric: Rubric | None, score_error: str | None, comparison: Comparison | None = None
    ) -> Reward:
        reward = compute_reward(
            report, rubric, threshold=self.settings.approval_threshold,
            require_all_checks=self.settings.require_all_checks, baseline=comparison,
        )
        if score_error:
            reward.reasons.append(f"the discriminator gave no usable score: {score_error}")
        return reward

    async def guide(
        self, task: Task, diff: str, check_summary: str, rubric: Rubric | None, problems: list[str]
    ) -> GuideOutcome:
        s = self.settings
        num_ctx = await self.llm.for_role("agitator").context_window(s.agitator_model, s.agitator_num_ctx)
        agitator = Agitator(self.llm, model=s.agitator_model, num_ctx=num_ctx, max_output_tokens=min(s.max_output_tokens, 1024))
        try:
            guidance, calls = await agitator.guide(task, diff, check_summary, rubric, problems)
        except (InvalidModelOutput, PromptTooLarge) as exc:
            return GuideOutcome(calls=getattr(exc, "calls", []), error=str(exc))
        return GuideOutcome(guidance=guidance, calls=calls)

    async def remember(self, repo: str, entries: list[GuidanceEntry], run_id: str, episode_id: str) -> list[int]:
        """The guidance history on record (a step, so a resumed job does not store it twice)."""
        if self.store is None:
            return []
        return [self.store.add_guidance(repo, e, run_id=run_id, episode_id=episode_id) for e in entries]

    async def commit(self, ws: Workspace, diff: str, message: str, trailers: dict[str, str]) -> str:
        return await asyncio.to_thread(commit_diff, ws, diff, message, trailers)

    # --- bookkeeping ---------------------------------------------------------------------------

    def _audit_policy(self, run_id: str, subject: str, proposal: Proposal, decision: PolicyDecision) -> None:
        if self.store is None:
            return
        self.store.audit(
            actor="policy",
            action="proposal.evaluate",
            subject=subject,
            decision="allowed" if decision.allowed else "denied",
            risk_score=decision.risk_score,
            details={
                "violations": decision.violations,
                "files": [c.file_path for c in proposal.changes],
                "lines_added": decision.lines_added,
            },
            run_id=run_id,
        )
