"""The generate → test → score → guide cycle.

One episode works one task to approval or exhaustion. Before attempt 1 the checks run on the unmodified
base (the baseline, bot/cycle/baseline.py); each attempt then generates, applies, checks and scores, and what
fell short becomes guidance for the next. Every step is a method of `CycleSteps` (bot/cycle/steps.py)
called through a `StepRunner`, so a job killed mid-way resumes at the last finished step; the loop
here decides only from step outputs, which keeps it deterministic on replay. `Cycle` owns its
`CycleSteps`; what one episode carries from attempt to attempt is an `EpisodeState`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.cycle.baseline import (
    Baseline,
    changed_test_files,
    compare,
    no_change_evidence,
    no_change_refusal,
    related_failures,
)
from bot.cycle.judging import for_reviewer
from bot.context import RepoIndex
from bot.cycle.policy import Policy
from bot.cycle.steps import (
    CycleRequest,
    CycleSteps,
    SandboxBox,
    SandboxOpener,
    StepRunner,
    candidates_for,
    run_inline,
)
from bot.cycle.trusted import trusted_workspace
from bot.events import ChecksFinished, EpisodeCompleted, EventBus, IterationCompleted, IterationStarted
from bot.llm.client import LLMError, ModelClient
from bot.records import (
    BaselineSummary,
    Candidate,
    Episode,
    EpisodeContext,
    EpisodeStatus,
    GuidanceEntry,
    IterationRecord,
    IterationStatus,
    Verdict,
    utcnow,
)
from bot.workspace import RUN_TRAILER, Workspace, delete_branch, ensure_worktree, remove_worktree, reset_worktree
from sandbox import open_sandbox

__all__ = ["Cycle", "CycleRequest", "EpisodeState", "SandboxOpener", "StepRunner", "run_inline"]

log = logging.getLogger(__name__)


@dataclass
class EpisodeState:
    """One episode's loop state: what it works in and on, and what earlier attempts left for later ones."""

    req: CycleRequest
    ws: Workspace
    episode: Episode
    index: RepoIndex
    box: SandboxBox
    baseline: Baseline | None
    history: list[GuidanceEntry] = field(default_factory=list)  # guidance for the next attempt, oldest first
    previous: IterationRecord | None = None  # the attempt chosen last iteration
    best: IterationRecord | None = None  # the best-rewarded attempt so far

    @property
    def max_iterations(self) -> int:
        return self.episode.context.max_iterations

    @property
    def candidates(self) -> list[Candidate]:
        return self.episode.context.candidates


class Cycle:
    """The loop of one episode. Its steps are a `CycleSteps`, each called through `step` (inline, or a
    durable DBOS step); the sandbox comes from `sandbox_opener` (tests and benchmarks pass a stand-in)."""

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
        self.store = store
        self.bus = bus or EventBus()
        self.step = step
        self.steps = CycleSteps(settings, llm, store=store, policy=policy)
        self.open_sandbox = sandbox_opener or open_sandbox

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, req: CycleRequest) -> Episode:
        settings, steps = self.settings, self.steps
        repo_name = req.repo_name
        if self.store is not None:
            self.store.create_run(req.run_id, kind=req.kind, repo=repo_name)  # idempotent
        ws = await self.step("checkout", steps.checkout, req)
        await asyncio.to_thread(ensure_worktree, ws)  # a resumed job gets its recorded workspace back
        episode = Episode(
            run_id=req.run_id,
            episode_id=req.episode_id,
            episode_number=req.episode_number,
            task=req.task,
            context=EpisodeContext(
                repo=repo_name, base_sha=ws.base_sha, branch=ws.branch, proposal_id=ws.proposal_id,
                max_iterations=req.max_iterations or settings.max_iterations, candidates=candidates_for(settings),
                dry_run=req.dry_run,
            ),
        )
        self._save_episode(episode)
        try:
            # the sandbox reads its check plan (`.github/aura-sicd.yml`, the language's files) when it opens:
            # open it on the base commit's files, so no proposal (nor a resumed job's last attempt) sets its own checks
            # and on the trusted commit (bot/cycle/trusted.py): a follow-up job never takes them from the bot's branch
            await asyncio.to_thread(reset_worktree, ws)
            index = await asyncio.to_thread(RepoIndex.build, ws.path)
            async with trusted_workspace(ws, req.trusted_ref) as trusted, \
                    self.open_sandbox(settings.sandbox, trusted.path) as box:
                baseline = await self.step("baseline", steps.baseline, trusted, box)
                if baseline is not None:
                    episode.context.baseline = BaselineSummary(
                        failing_tests=baseline.failing_tests, red_checks=baseline.red_checks, tests_run=baseline.tests_run)
                await self._loop(EpisodeState(req=req, ws=ws, episode=episode, index=index, box=box, baseline=baseline,
                                              history=list(req.guidance)))
        except LLMError as exc:
            episode.status = EpisodeStatus.ERROR
            episode.outcomes.error = str(exc)
            episode.metrics.error_count += 1
            raise
        finally:
            if episode.status is EpisodeStatus.RUNNING:
                episode.status = EpisodeStatus.ERROR
            episode.finished_at = utcnow()
            self._save_episode(episode)
            await asyncio.to_thread(remove_worktree, ws.source_repo, ws.path)
            keep_branch = episode.outcomes.commit is not None and not req.dry_run
            if not req.branch and not keep_branch:
                await asyncio.to_thread(delete_branch, ws.source_repo, ws.branch)
            await self.bus.emit(EpisodeCompleted(episode=episode))
        return episode

    async def _loop(self, state: EpisodeState) -> None:
        req, episode, baseline = state.req, state.episode, state.baseline
        failing_on_base = related_failures(baseline, req.task.text) if baseline is not None else None
        if failing_on_base:
            state.history.append(GuidanceEntry(source="baseline", text=failing_on_base))
        for number in range(1, state.max_iterations + 1):
            records = []
            for ci, cand in enumerate(state.candidates):
                await self.bus.emit(
                    IterationStarted(
                        run_id=req.run_id, episode_id=req.episode_id, number=number,
                        max_iterations=state.max_iterations, candidate=ci, model=cand.model,
                    )
                )
                records.append(await self._attempt(state, number, ci, cand))
            chosen = max(records, key=lambda r: (r.reward.value if r.reward else -1.0, -r.candidate))
            episode.iterations.extend(records)
            if state.best is None or _reward_of(chosen) > _reward_of(state.best):
                state.best = chosen
            if chosen.status is IterationStatus.APPROVED:
                episode.status = EpisodeStatus.APPROVED
                await self._keep(state, chosen, draft=False)
                self._record(episode, records)
                return
            if chosen.status is IterationStatus.NO_CHANGE and number == 1:
                episode.status = EpisodeStatus.NO_CHANGE
                episode.outcomes.summary = chosen.proposal.summary if chosen.proposal else ""
                episode.outcomes.evidence = no_change_evidence(baseline, req.task.text) or ""
                self._record(episode, records)
                return
            if number < state.max_iterations:
                new_guidance = await self._guidance_after(req, chosen, number)
                state.history.extend(new_guidance)
                await self.step(f"remember-{number}", self.steps.remember, episode.context.repo, new_guidance,
                                req.run_id, req.episode_id)
            self._record(episode, records)
            state.previous = chosen  # every attempt starts from the base again; the index stays the base's
        episode.status = EpisodeStatus.EXHAUSTED
        if state.best is not None:
            await self._keep(state, state.best, draft=True)

    async def _attempt(self, state: EpisodeState, number: int, candidate_index: int, cand: Candidate) -> IterationRecord:
        req, ws, box, baseline, steps = state.req, state.ws, state.box, state.baseline, self.steps
        started = time.perf_counter()
        external_ms = 0.0
        record = IterationRecord(
            run_id=req.run_id, episode_id=req.episode_id, number=number, candidate=candidate_index,
            proposal_id=ws.proposal_id, status=IterationStatus.FAILED, model=cand.model,
            temperature=cand.temperature,
        )
        gen = await self.step(f"generate-{number}-{candidate_index}", steps.generate, req.task, state.index,
                              state.history, state.previous, cand)
        external_ms += gen.llm_ms
        record.llm_calls.extend(gen.calls)
        record.guidance_in = gen.guidance
        record.generator_messages = gen.messages
        record.edit_format = gen.edit_format
        if gen.proposal is None:
            record.error = gen.error
            return await self._finish(record, started, external_ms)
        record.proposal = gen.proposal
        if not gen.proposal.changes:  # a claim to check: accepted only when nothing the task is about fails on the base
            if no_change_evidence(baseline, req.task.text) is not None:
                record.status = IterationStatus.NO_CHANGE
            else:
                record.error = no_change_refusal(baseline, req.task.text)
            return await self._finish(record, started, external_ms)

        subject = f"{record.proposal_id}#{number}.{candidate_index}"
        applied = await self.step(f"apply-{number}-{candidate_index}", steps.apply, ws, gen.proposal, req.run_id, subject)
        record.policy = applied.policy
        record.diff = applied.diff
        if not applied.policy.allowed:
            record.error = "policy: " + "; ".join(applied.policy.violations)
            return await self._finish(record, started, external_ms)
        if applied.error:
            record.apply_error = applied.error
            return await self._finish(record, started, external_ms)

        check_started = time.perf_counter()
        gated = await self.step(f"check-{number}-{candidate_index}", steps.check, ws, applied.diff, box,
                                req.task.text, baseline)
        external_ms += (time.perf_counter() - check_started) * 1000
        report = record.check_report = gated.report
        record.test_impact = gated.impact
        await self.bus.emit(
            ChecksFinished(run_id=req.run_id, episode_id=req.episode_id, number=number, candidate=candidate_index, report=report)
        )

        if baseline is not None and report.selected_tests is None:  # a failed selection is rejected as it is
            record.judgment = await self.step(f"judge-{number}-{candidate_index}", steps.judge, ws, applied.diff,
                                              req.task, baseline, report, box)
        notes = for_reviewer(record.judgment)
        scored = await self.step(f"score-{number}-{candidate_index}", steps.score, req.task, applied.diff, report, notes)
        external_ms += scored.llm_ms
        record.llm_calls.extend(scored.calls)
        record.rubric = scored.rubric
        if baseline is not None:
            record.comparison = compare(baseline, report, req.task.text)
            record.comparison.dodges = record.judgment.blockers if record.judgment else []
            test_files = changed_test_files(applied.diff)
            if test_files and not record.comparison.new_failures:
                record.comparison.reproduced = await self.step(
                    f"reproduce-{number}-{candidate_index}", steps.reproduce, ws, applied.diff, test_files, baseline, report, box)
        record.reward = steps.reward(report, scored.rubric, scored.error, record.comparison)
        if record.judgment is not None:
            record.reward.changed_expectations = sorted({e.path for e in record.judgment.expectations})
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
        if chosen.status is IterationStatus.NO_CHANGE or not chosen.proposal.changes:
            why = f" {chosen.error}" if chosen.error else ""
            return [GuidanceEntry(source="agitator", text="You proposed no change, but the task is not done yet: "
                                  f"propose the change it needs.{why}", iteration=number)]
        problems = list(chosen.reward.reasons) if chosen.reward else []
        guide = await self.step(
            f"guide-{number}", self.steps.guide, req.task, chosen.diff,
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

    async def _keep(self, state: EpisodeState, chosen: IterationRecord, *, draft: bool) -> None:
        """The chosen attempt as the episode's outcome; committed when approved, or as a draft when the
        attempts ran out and the request asks for one (a dodge never becomes a draft)."""
        req, outcome = state.req, state.episode.outcomes
        outcome.best_iteration, outcome.best_candidate = chosen.number, chosen.candidate
        outcome.best_reward, outcome.best_diff = _reward_of(chosen), chosen.diff
        if req.dry_run or chosen.reward is None or not chosen.diff:
            return
        if draft and (not req.commit_best_on_exhaustion or chosen.reward.dodges):
            return
        trailers = {RUN_TRAILER: req.run_id, "Aura-Reward": f"{chosen.reward.value:.3f}"}
        summary = chosen.proposal.summary if chosen.proposal else ""
        message = f"{'[draft] ' if draft else ''}{req.task.title}\n\n{summary}"
        outcome.commit = await self.step("commit", self.steps.commit, state.ws, chosen.diff, message, trailers)
        outcome.draft = draft

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

    # --- bookkeeping ---------------------------------------------------------------------------

    def _save_episode(self, episode: Episode) -> None:
        if self.store is not None:
            self.store.save_episode(episode)

    def _save_iteration(self, record: IterationRecord) -> None:
        if self.store is not None:
            self.store.save_iteration(record)


def _reward_of(record: IterationRecord) -> float:
    return record.reward.value if record.reward else -1.0

