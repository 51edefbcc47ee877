"""The generate → test → score → guide cycle.

One episode works one task to approval or exhaustion. The loop is written as small steps (checkout,
generate, apply, check, score, guide, commit), each a function with serializable inputs and outputs,
called through a `StepRunner`: inline on the command line, as durable DBOS steps in the GitHub App
(bot/jobs.py), so a job killed mid-way resumes at the last finished step. The loop itself decides only
from step outputs, which keeps it deterministic on replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, Field

from bot.baseline import Baseline, Comparison, changed_test_files, compare, related_failures, reproduced_tests
from bot.config import Settings
from bot.context import RepoIndex
from bot.edits import AppliedChange, EditError, apply_changes
from bot.events import ChecksFinished, EpisodeCompleted, EventBus, IterationCompleted, IterationStarted
from bot.llm import InvalidModelOutput, LLMError, ModelClient, PromptTooLarge
from bot.policy import Policy
from bot.records import (
    AgitatorGuidance,
    Episode,
    EpisodeStatus,
    GuidanceEntry,
    IterationRecord,
    IterationStatus,
    LLMCall,
    PolicyDecision,
    Proposal,
    Reward,
    Rubric,
    Task,
    Verdict,
    proposal_id_for,
    utcnow,
)
from bot.reward import compute_reward
from bot.roles.agitator import Agitator
from bot.roles.discriminator import Discriminator
from bot.roles.generator import Generator, cacheable_context
from bot.tokens import count_tokens
from bot.workspace import (
    Workspace,
    apply_diff,
    commit_diff,
    create_worktree,
    delete_branch,
    ensure_worktree,
    remove_worktree,
    reset_worktree,
    worktree_diff,
)
from sandbox import open_sandbox
from sandbox.config import SandboxSettings
from sandbox.reports import CheckReport

log = logging.getLogger(__name__)
T = TypeVar("T")

GUIDANCE_SHARE = 0.25  # at most this share of the generator's input budget goes to the guidance history


class StepRunner(Protocol):
    async def __call__(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...


async def run_inline(name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


class SandboxBox(Protocol):
    backend_name: str

    async def check(self, workdir: Path) -> CheckReport: ...


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
    guidance: list[GuidanceEntry] = Field(default_factory=list)  # human guidance and memory, oldest first
    max_iterations: int | None = None
    dry_run: bool = False  # everything but the commit: the branch is removed at the end
    kind: str = "cli"  # the run's kind in the store: cli | github | training | eval
    commit_best_on_exhaustion: bool = False  # keep the best attempt as a commit (for a draft PR)


class Candidate(BaseModel):
    model: str
    temperature: float


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


def fit_guidance(history: list[GuidanceEntry], budget_tokens: int) -> list[GuidanceEntry]:
    """The newest entries that fit the budget, in their original order."""
    kept: list[GuidanceEntry] = []
    used = 0
    for entry in reversed(history):
        cost = count_tokens(entry.text) + 16
        if used + cost > budget_tokens:
            break
        kept.append(entry)
        used += cost
    return list(reversed(kept))


class Cycle:
    def __init__(
        self,
        settings: Settings,
        llm: ModelClient,
        *,
        store: Any | None = None,  # bot.store.Store; optional so the cycle runs without a database
        bus: EventBus | None = None,
        step: StepRunner = run_inline,
        policy: Policy | None = None,
        sandbox_opener: SandboxOpener | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.bus = bus or EventBus()
        self.step = step
        self.policy = policy or Policy.from_settings(settings)
        self.open_sandbox = sandbox_opener or open_sandbox

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, req: CycleRequest) -> Episode:
        settings = self.settings
        max_iterations = req.max_iterations or settings.max_iterations
        candidates = candidates_for(settings)
        repo_name = req.repo or Path(req.repo_dir).resolve().name
        if self.store is not None:
            self.store.create_run(req.run_id, kind=req.kind, repo=repo_name)  # idempotent
        ws = await self.step("checkout", self.checkout, req)
        await asyncio.to_thread(ensure_worktree, ws)  # a resumed job gets its recorded workspace back
        episode = Episode(
            run_id=req.run_id,
            episode_id=req.episode_id,
            episode_number=req.episode_number,
            task=req.task,
            context={
                "repo": repo_name,
                "base_sha": ws.base_sha,
                "branch": ws.branch,
                "proposal_id": ws.proposal_id,
                "max_iterations": max_iterations,
                "candidates": [c.model_dump() for c in candidates],
                "dry_run": req.dry_run,
            },
        )
        self._save_episode(episode)
        try:
            index = await asyncio.to_thread(RepoIndex.build, ws.path)
            async with self.open_sandbox(settings.sandbox, ws.path) as box:
                baseline = await self.step("baseline", self.baseline, ws, box)
                if baseline is not None:
                    episode.context["baseline"] = {"failing_tests": baseline.failing_tests, "red_checks": baseline.red_checks,
                                                   "tests_run": baseline.tests_run}
                await self._loop(req, ws, episode, index, box, baseline, candidates, max_iterations, repo_name)
        except LLMError as exc:
            episode.status = EpisodeStatus.ERROR
            episode.outcomes["error"] = str(exc)
            episode.metrics.error_count += 1
            raise
        finally:
            if episode.status is EpisodeStatus.RUNNING:
                episode.status = EpisodeStatus.ERROR
            episode.finished_at = utcnow()
            self._save_episode(episode)
            await asyncio.to_thread(remove_worktree, ws.source_repo, ws.path)
            keep_branch = "commit" in episode.outcomes and not req.dry_run
            if not req.branch and not keep_branch:
                await asyncio.to_thread(delete_branch, ws.source_repo, ws.branch)
            await self.bus.emit(EpisodeCompleted(episode=episode))
        return episode

    async def _loop(
        self,
        req: CycleRequest,
        ws: Workspace,
        episode: Episode,
        index: RepoIndex,
        box: SandboxBox,
        baseline: Baseline | None,
        candidates: list[Candidate],
        max_iterations: int,
        repo_name: str,
    ) -> None:
        history = list(req.guidance)
        failing_on_base = related_failures(baseline, req.task.text) if baseline is not None else None
        if failing_on_base:
            history.append(GuidanceEntry(source="baseline", text=failing_on_base))
        previous: IterationRecord | None = None
        best: IterationRecord | None = None
        for number in range(1, max_iterations + 1):
            records = []
            for ci, cand in enumerate(candidates):
                await self.bus.emit(
                    IterationStarted(
                        run_id=req.run_id, episode_id=req.episode_id, number=number,
                        max_iterations=max_iterations, candidate=ci, model=cand.model,
                    )
                )
                record = await self._attempt(req, ws, index, box, baseline, number, ci, cand, history, previous)
                records.append(record)
            chosen = max(records, key=lambda r: (r.reward.value if r.reward else -1.0, -r.candidate))
            episode.iterations.extend(records)
            if best is None or _reward_of(chosen) > _reward_of(best):
                best = chosen
            if chosen.status is IterationStatus.APPROVED:
                await self._accept(req, ws, episode, chosen)
                self._record(episode, records)
                return
            if chosen.status is IterationStatus.NO_CHANGE and number == 1:
                episode.status = EpisodeStatus.NO_CHANGE
                episode.outcomes.update(summary=chosen.proposal.summary if chosen.proposal else "")
                self._record(episode, records)
                return
            if number < max_iterations:
                new_guidance = await self._guidance_after(req, chosen, number)
                history.extend(new_guidance)
                await self.step(f"remember-{number}", self.remember, repo_name, new_guidance, req.run_id, req.episode_id)
            self._record(episode, records)
            previous = chosen  # every attempt starts from the base again; the index stays the base's
        episode.status = EpisodeStatus.EXHAUSTED
        if best is not None:
            episode.outcomes.update(
                best_iteration=best.number, best_candidate=best.candidate,
                best_reward=_reward_of(best), best_diff=best.diff, branch=ws.branch, proposal_id=ws.proposal_id,
            )
            if req.commit_best_on_exhaustion and best.diff and best.reward is not None and not req.dry_run:
                trailers = {"Aura-Run-Id": req.run_id, "Aura-Reward": f"{best.reward.value:.3f}"}
                message = f"[draft] {req.task.title}\n\n{best.proposal.summary if best.proposal else ''}"
                episode.outcomes["commit"] = await self.step("commit", self.commit, ws, best.diff, message, trailers)
                episode.outcomes["draft"] = True

    async def _attempt(
        self,
        req: CycleRequest,
        ws: Workspace,
        index: RepoIndex,
        box: SandboxBox,
        baseline: Baseline | None,
        number: int,
        candidate_index: int,
        cand: Candidate,
        history: list[GuidanceEntry],
        previous: IterationRecord | None,
    ) -> IterationRecord:
        started = time.perf_counter()
        external_ms = 0.0
        record = IterationRecord(
            run_id=req.run_id, episode_id=req.episode_id, number=number, candidate=candidate_index,
            proposal_id=ws.proposal_id, status=IterationStatus.FAILED, model=cand.model,
            temperature=cand.temperature,
        )
        gen = await self.step(f"generate-{number}-{candidate_index}", self.generate, req.task, index, history, previous, cand)
        external_ms += gen.llm_ms
        record.llm_calls.extend(gen.calls)
        record.guidance_in = gen.guidance
        record.generator_messages = gen.messages
        record.edit_format = gen.edit_format
        if gen.proposal is None:
            record.error = gen.error
            return await self._finish(record, started, external_ms)
        record.proposal = gen.proposal
        if not gen.proposal.changes:
            record.status = IterationStatus.NO_CHANGE
            return await self._finish(record, started, external_ms)

        subject = f"{record.proposal_id}#{number}.{candidate_index}"
        applied = await self.step(f"apply-{number}-{candidate_index}", self.apply, ws, gen.proposal, req.run_id, subject)
        record.policy = applied.policy
        record.diff = applied.diff
        if not applied.policy.allowed:
            record.error = "policy: " + "; ".join(applied.policy.violations)
            return await self._finish(record, started, external_ms)
        if applied.error:
            record.apply_error = applied.error
            return await self._finish(record, started, external_ms)

        check_started = time.perf_counter()
        report = await self.step(f"check-{number}-{candidate_index}", self.check, ws, applied.diff, box)
        external_ms += (time.perf_counter() - check_started) * 1000
        record.check_report = report
        await self.bus.emit(
            ChecksFinished(run_id=req.run_id, episode_id=req.episode_id, number=number, candidate=candidate_index, report=report)
        )

        scored = await self.step(f"score-{number}-{candidate_index}", self.score, req.task, applied.diff, report)
        external_ms += scored.llm_ms
        record.llm_calls.extend(scored.calls)
        record.rubric = scored.rubric
        if baseline is not None:
            record.comparison = compare(baseline, report, req.task.text)
            test_files = changed_test_files(applied.diff)
            if test_files and not record.comparison.new_failures:
                record.comparison.reproduced = await self.step(
                    f"reproduce-{number}-{candidate_index}", self.reproduce, ws, applied.diff, test_files, baseline, report, box)
        record.reward = self.reward(report, scored.rubric, scored.error, record.comparison)
        record.status = (
            IterationStatus.APPROVED if record.reward.verdict is Verdict.APPROVED else IterationStatus.REJECTED
        )
        return await self._finish(record, started, external_ms)

    async def _finish(self, record: IterationRecord, started: float, external_ms: float) -> IterationRecord:
        record.finished_at = utcnow()
        record.harness_ms = max(0.0, (time.perf_counter() - started) * 1000 - external_ms)
        self._save_iteration(record)
        await self.bus.emit(IterationCompleted(record=record))
        return record

    async def _guidance_after(self, req: CycleRequest, chosen: IterationRecord, number: int) -> list[GuidanceEntry]:
        """What the next attempt is told: the precise error for attempts that never ran, the agitator's
        guidance for attempts that ran and fell short."""
        if chosen.policy is not None and not chosen.policy.allowed:
            text = "Your last proposal was refused by policy and not applied: " + "; ".join(chosen.policy.violations)
            return [GuidanceEntry(source="policy", text=text, iteration=number)]
        if chosen.apply_error:
            return [GuidanceEntry(source="edit_error", text=chosen.apply_error, iteration=number)]
        if chosen.proposal is None:
            cut = next((c for c in chosen.llm_calls if c.role == "generator" and c.finish_reason == "length"), None)
            if cut is not None:
                text = (f"Your last reply was cut off at the token limit ({cut.completion_tokens} tokens) before it was "
                        "complete. Write much less: only the lines that change, no repetition, a one-sentence summary.")
                return [GuidanceEntry(source="edit_error", text=text, iteration=number)]
            return [GuidanceEntry(source="edit_error", text=f"Your last reply was unusable: {chosen.error}", iteration=number)]
        if chosen.status is IterationStatus.NO_CHANGE:
            return [GuidanceEntry(source="agitator", text="You proposed no change, but the task is not done yet: propose the change it needs.", iteration=number)]
        problems = list(chosen.reward.reasons) if chosen.reward else []
        guide = await self.step(
            f"guide-{number}", self.guide, req.task, chosen.diff,
            chosen.check_report.summary() if chosen.check_report else "", chosen.rubric, problems,
        )
        chosen.llm_calls.extend(guide.calls)
        chosen.guidance_out = guide.guidance
        self._save_iteration(chosen)
        if guide.guidance is None:
            return [GuidanceEntry(source="agitator", text="The last attempt fell short: " + "; ".join(problems), iteration=number)]
        g = guide.guidance
        parts = [g.guidance]
        if g.focus_points:
            parts.append("Focus on: " + "; ".join(g.focus_points))
        if g.improvement_plan:
            parts.append("Plan: " + " ".join(f"{i}. {s}" for i, s in enumerate(g.improvement_plan, 1)))
        return [GuidanceEntry(source="agitator", text="\n".join(parts), iteration=number)]

    async def _accept(self, req: CycleRequest, ws: Workspace, episode: Episode, chosen: IterationRecord) -> None:
        episode.status = EpisodeStatus.APPROVED
        assert chosen.reward is not None and chosen.proposal is not None
        outcomes: dict[str, Any] = dict(
            best_iteration=chosen.number, best_candidate=chosen.candidate, best_reward=chosen.reward.value,
            best_diff=chosen.diff, branch=ws.branch, proposal_id=ws.proposal_id,
        )
        if not req.dry_run:
            trailers = {"Aura-Run-Id": req.run_id, "Aura-Reward": f"{chosen.reward.value:.3f}"}
            message = f"{req.task.title}\n\n{chosen.proposal.summary}"
            outcomes["commit"] = await self.step("commit", self.commit, ws, chosen.diff, message, trailers)
        episode.outcomes.update(outcomes)

    def _record(self, episode: Episode, records: list[IterationRecord]) -> None:
        m = episode.metrics
        for r in records:
            for call in r.llm_calls:
                m.tokens_used += call.prompt_tokens + call.completion_tokens
                m.inference_time_ms += call.duration_ms
                m.llm_calls += 1
            if r.proposal:
                m.changes_proposed += len(r.proposal.changes)
            if r.status is IterationStatus.FAILED:
                m.error_count += 1
            episode.actions.append(
                {
                    "iteration": r.number, "candidate": r.candidate, "status": r.status.value,
                    "model": r.model, "reward": r.reward.value if r.reward else None,
                    "files": [c.file_path for c in r.proposal.changes] if r.proposal else [],
                }
            )
        if episode.status is EpisodeStatus.APPROVED:
            accepted = next(r for r in records if r.status is IterationStatus.APPROVED)
            m.changes_accepted = len(accepted.proposal.changes) if accepted.proposal else 0
        self._save_episode(episode)

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
            worktrees_dir=self.settings.data_dir / "worktrees",
            existing_branch=req.branch is not None,
        )

    async def generate(
        self, task: Task, index: RepoIndex, history: list[GuidanceEntry], previous: IterationRecord | None, cand: Candidate
    ) -> GenerateOutcome:
        s = self.settings
        num_ctx = await self.llm.for_role("generator").context_window(cand.model, s.generator_num_ctx)
        guidance = fit_guidance(history, self._guidance_budget(num_ctx))
        edit_format = s.edit_format_for(cand.model)
        generator = Generator(
            self.llm, model=cand.model, num_ctx=num_ctx, max_output_tokens=s.max_output_tokens,
            temperature=cand.temperature, edit_format=edit_format, read_file=index.text,
        )
        # the stable part first, the previous attempt last: servers with a prompt cache reuse the start
        stable, changing, context_tokens = await asyncio.to_thread(
            cacheable_context, generator, index, task, guidance, previous, self._guidance_budget(num_ctx))
        started = time.perf_counter()
        try:
            proposal, calls = await generator.propose(task, stable, guidance, changing)
        except (InvalidModelOutput, PromptTooLarge) as exc:
            proposal, calls, error = None, getattr(exc, "calls", []), str(exc)
        else:
            error = None
        return GenerateOutcome(
            proposal=proposal, calls=calls, error=error, guidance=guidance, context_tokens=context_tokens,
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
        key = hashlib.sha256(f"{ws.base_sha}\x1f{self.settings.sandbox.model_dump_json()}".encode()).hexdigest()[:24]
        cached = self.settings.data_dir / "baselines" / f"{key}.json"
        if cached.is_file():
            try:
                return Baseline.model_validate_json(cached.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("ignoring an unreadable baseline cache file %s", cached)
        await asyncio.to_thread(reset_worktree, ws)
        baseline = Baseline.of(ws.base_sha, await box.check(ws.path))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(baseline.model_dump_json(), encoding="utf-8")
        return baseline

    async def reproduce(self, ws: Workspace, diff: str, test_files: list[str], baseline: Baseline,
                        report: CheckReport, box: SandboxBox) -> list[str]:
        """The attempt's tests on the base code: which fail there and pass with the change."""
        await asyncio.to_thread(apply_diff, ws, diff, only=test_files)
        tests_on_base = await box.check(ws.path)
        return reproduced_tests(baseline, tests_on_base, report, test_files)

    async def check(self, ws: Workspace, diff: str, box: SandboxBox) -> CheckReport:
        await asyncio.to_thread(apply_diff, ws, diff)  # the attempt's exact state, also after a restart
        return await box.check(ws.path)

    async def score(self, task: Task, diff: str, report: CheckReport) -> ScoreOutcome:
        s = self.settings
        num_ctx = await self.llm.for_role("discriminator").context_window(s.discriminator_model, s.discriminator_num_ctx)
        disc = Discriminator(self.llm, model=s.discriminator_model, num_ctx=num_ctx, max_output_tokens=min(s.max_output_tokens, 1024))
        started = time.perf_counter()
        try:
            rubric, calls = await disc.score(task, diff, report.summary())
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

    def _guidance_budget(self, num_ctx: int) -> int:
        return int((num_ctx - self.settings.max_output_tokens) * GUIDANCE_SHARE)

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

    def _save_episode(self, episode: Episode) -> None:
        if self.store is not None:
            self.store.save_episode(episode)

    def _save_iteration(self, record: IterationRecord) -> None:
        if self.store is not None:
            self.store.save_iteration(record)


def _reward_of(record: IterationRecord) -> float:
    return record.reward.value if record.reward else -1.0

