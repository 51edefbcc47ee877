"""The durable job: one DBOS workflow per admitted delivery, every side effect in a durable step.

    sync mirror → repo config at the base commit → task (+ issue comments) → models pulled?
    → the episode (bot/cycle/episode.py: prepare from learning, Cycle.run with every model call, sandbox run
      and commit a step, finish the run, learn)
    → push (remote sha checked first) → PR (found before created) → review request, check run,
      comments / review replies, label removed

A process killed mid-job resumes after restart at the last finished step: DBOS replays the workflow,
returning recorded step outputs instead of running them again, so nothing is pushed, opened or
commented twice. The workflow decides only from step outputs (deterministic on replay); anything
random, timed or fetched happens inside a step. Run and episode ids derive from the workflow id.

Publishing never loses a job: the GitHub client and git wait out transient faults within a time budget
(`github_retry_budget_s`), and a publishing step that still fails is retried by DBOS
(`publish_attempts`, pauses from `publish_retry_interval_s`, doubling). When the job finally gives up it
says so on the issue (what was done, the branch if pushed, what failed) and the progress comment says
it failed: it never claims success without a pull request.

The installation token is fetched inside the steps that need it (`GitHubApp.installation_token`
caches it in memory) and never returned from a step, so it never reaches DBOS's tables.

Coalescing: jobs with a `coalesce_key` (a review and its line comments) go through a DBOS debouncer
onto a small queue; each such job is also sent as a message to the debounced workflow, which, when the
burst is over, folds everything it received into one job and enqueues it on the job queue.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from bot.config import Settings
from bot.cycle.loop import CycleRequest
from bot.cycle.episode import EpisodeResult, EpisodeRunner
from bot.events import EventBus
from bot.github.job_request import JobKind, JobRequest
from bot.github.messages import invalid_repo_config
from bot.github.publish import PullRef
from bot.github.repo_config import RepoConfig
from bot.jobs.fairness import queue_partition
from bot.jobs.forks import fork_patch_comment
from bot.jobs.job_steps import Checkout, ConfigResult, JobOutcome, JobSteps, current_services
from bot.jobs.report import (
    ProgressReporter,
    exhausted_comment,
    failed_comment,
    gave_up_comment,
    is_publish_step,
    iteration_reply,
    no_change_comment,
    opened_comment,
    root_cause,
    setup_failed_comment,
    step_words,
)
from bot.llm.client import LLMError
from bot.records import Episode, EpisodeStatus, Task
from bot.workspace import GitError, WorkspaceError
from sandbox import SandboxError, SetupError
from sandbox.repo_config import CONFIG_PATH

log = logging.getLogger(__name__)

JOB_QUEUE = "aura-sicd-jobs"
COALESCE_QUEUE = "aura-sicd-coalesce"
COALESCE_TOPIC = "coalesced-job"
JOB_WORKFLOW = "aura-sicd.job"
COALESCE_WORKFLOW = "aura-sicd.coalesce"


# --- the workflows -------------------------------------------------------------------------------


@DBOS.workflow(name=JOB_WORKFLOW)
async def job_workflow(job: dict[str, Any]) -> dict[str, Any]:
    request = JobRequest.model_validate(job)
    run_class = JobRun
    if request.kind in (JobKind.SCAN, JobKind.FINDING):  # scheduled scans (bot/jobs/autonomy.py)
        from bot.jobs.autonomy import RUNS

        run_class = RUNS[request.kind]
    run = run_class(current_services(), request, DBOS.workflow_id or job["delivery_id"])
    outcome = await run.run()
    log.info("job %s (%s on %s#%s): %s", run.workflow_id, run.job.kind.value, run.job.repo, run.job.number, outcome.status)
    return outcome.model_dump(mode="json")


@DBOS.workflow(name=COALESCE_WORKFLOW)
async def coalesce_workflow(job: dict[str, Any]) -> str:
    """Runs once a burst of jobs with one coalesce key is over: fold them, enqueue one job."""
    received = [JobRequest.model_validate(job)]
    while (message := await DBOS.recv_async(COALESCE_TOPIC, timeout_seconds=0)) is not None:
        received.append(JobRequest.model_validate(message))
    merged = merge_jobs(received)
    queue = await DBOS.retrieve_queue_async(JOB_QUEUE)
    if queue is None:
        raise RuntimeError(f"the queue {JOB_QUEUE} is not registered")
    workflow_id = f"{DBOS.workflow_id}:job"
    partition = queue_partition(merged, current_services().settings)
    with SetWorkflowID(workflow_id), SetEnqueueOptions(queue_partition_key=partition):
        await queue.enqueue_async(job_workflow, merged.model_dump(mode="json"))
    return workflow_id


def merge_jobs(jobs: list[JobRequest]) -> JobRequest:
    """One job from a burst: oldest first, each delivery once, guidance and reply targets added up."""
    unique: dict[str, JobRequest] = {}
    for job in sorted(jobs, key=lambda j: (j.received_at, j.delivery_id)):
        unique.setdefault(job.delivery_id, job)
    first, *rest = unique.values()
    for later in rest:
        first = first.merge(later)
    return first




class JobRun(JobSteps):
    """One job: the steps of JobSteps in their order, deciding only from their outputs."""

    # --- the job -------------------------------------------------------------------------------

    async def run(self) -> JobOutcome:
        job = self.job
        if job.kind is JobKind.FEEDBACK:
            await self.step("record-feedback", self.record_feedback)
            return JobOutcome(status="feedback", detail="merged" if job.merged else "closed unmerged")
        if job.installation_id is None:
            return JobOutcome(status="skipped", detail="no installation for this repository")
        try:
            return await self.work()
        except Exception as exc:  # noqa: BLE001  (whatever it was, the issue hears of it)
            return await self.give_up(exc)

    async def work(self) -> JobOutcome:
        job = self.job
        self.progress_id = await self.publish_step("progress-start", self.start_progress)
        checkout: Checkout = await self.publish_step("sync", self.sync)
        config: ConfigResult = await self.step("repo-config", self.read_config, checkout.trusted)
        if config.error is not None:
            await self.publish_step("comment-invalid-config", self.comment, invalid_repo_config(CONFIG_PATH, config.error))
            await self.publish_step("progress-end", self.end_progress, "stopped: invalid repository configuration")
            await self.publish_step("remove-label", self.remove_label)
            return JobOutcome(status="invalid_config", detail=config.error)
        repo_config = RepoConfig.model_validate(config.config or {})
        if repo_config.label and self.services.remember_label is not None:
            self.services.remember_label(job.repo, repo_config.label)
        settings = repo_config.apply(self.settings)

        task: Task = await self.publish_step("task", self.build_task)
        try:
            await self.step("check-models", self.check_models, settings)
            result = await self.run_episode(settings, checkout, task)
            if result.error is not None or result.episode is None:
                raise LLMError(result.error or "the model server failed")
        except (LLMError, WorkspaceError, SandboxError, GitError) as exc:
            if isinstance(exc, SetupError):
                show = repo_config.post_setup_output is not False
                text = setup_failed_comment(exc.message, exc.output, show_output=show, dashboard=self.dashboard)
            else:
                text = failed_comment(str(exc), self.dashboard)
            await self.publish_step("comment-failed", self.comment, text)
            await self.publish_step("progress-end", self.end_progress, "failed")
            return JobOutcome(status="failed", run_id=self.run_id, detail=str(exc))
        episode = result.episode

        if job.kind is JobKind.PR_ITERATE:
            outcome = await self.publish_iteration(episode, checkout)
        elif job.kind is JobKind.PR_FOREIGN and job.fork:
            outcome = await self.publish_to_fork(episode, checkout)
        else:
            outcome = await self.publish_new_pr(episode, checkout)
        await self.publish_step("progress-end", self.end_progress, f"done: {outcome.status}")
        return outcome

    async def give_up(self, exc: Exception) -> JobOutcome:
        """The job cannot finish: say so on the issue (what was done, what failed) and end the progress."""
        failed_step, error = self.current_step, root_cause(exc)
        log.warning("job %s gives up at step %s: %s", self.workflow_id, failed_step, error)
        doing = step_words(failed_step)
        tried = self.rate_limits.tried(failed_step, client_waited_s=self._retry.waited_s if self._retry else 0.0)
        text = gave_up_comment(doing, error, done=self.done, tried=tried, dashboard=self.dashboard)
        try:
            await self.publish_step("comment-gave-up", self.comment, text)
            await self.publish_step("progress-end", self.end_progress, f"failed while {doing}")
        except Exception as again:  # noqa: BLE001  GitHub is gone for good: the log and the dashboard say it
            log.error("job %s: cannot report its failure on GitHub either: %s", self.workflow_id, root_cause(again))
        status = "publish_failed" if is_publish_step(failed_step) else "failed"
        return JobOutcome(status=status, run_id=self.run_id, detail=f"{failed_step}: {error}")

    async def run_episode(self, settings: Settings, checkout: Checkout, task: Task) -> EpisodeResult:
        job = self.job
        bus = EventBus()
        reporter = ProgressReporter(self._edit_progress, key=self.workflow_id,
                                    max_iterations=settings.max_iterations, dashboard=self.dashboard)
        reporter.subscribe(bus)
        self.reporter = reporter
        request = CycleRequest(
            run_id=self.run_id,
            episode_id=self.episode_id,
            repo_dir=Path(checkout.mirror),
            repo=job.repo,
            task=task,
            base_ref=checkout.base_sha,
            branch=checkout.branch,
            trusted_ref=checkout.trusted,
            guidance=job.guidance,
            kind="github",
            # a PR iteration only ever pushes approved work onto a branch people are reviewing
            commit_best_on_exhaustion=settings.draft_pr_on_failure and job.kind is not JobKind.PR_ITERATE and not job.fork,
        )
        llm = self.services.llm_factory(settings)
        try:
            runner = EpisodeRunner(settings, llm, store=self.services.store, bus=bus, step=self.step,
                                   sandbox_opener=self.services.sandbox_opener)
            return await runner.run(request)
        finally:
            await llm.aclose()

    # --- publishing ----------------------------------------------------------------------------

    async def publish_new_pr(self, episode: Episode, checkout: Checkout) -> JobOutcome:
        """An issue, or someone else's PR: a new aura-sicd/<id> PR (a draft when not approved)."""
        if episode.status is EpisodeStatus.NO_CHANGE:
            await self.publish_step("comment-no-change", self.comment, no_change_comment(episode))
            await self.publish_step("remove-label", self.remove_label)
            return JobOutcome(status="no_change", run_id=self.run_id)
        commit = episode.outcomes.commit
        approved = episode.status is EpisodeStatus.APPROVED
        pr: PullRef | None = None
        if commit:
            branch = episode.context.branch
            await self.publish_step("push", self.push, checkout.mirror, commit, branch)
            self.done.append(f"pushed the change ({commit[:12]}) to the branch `{branch}`")
            pr = await self.publish_step("open-pr", self.open_pr, episode, branch, not approved)
            self.done.append(f"opened {pr.html_url}")
            await self.publish_step("request-review", self.request_review, pr.number)
            await self.step("record-pr", self.record_pr, pr, branch)
            await self.publish_step("check-run", self.check_run, commit, episode)
        if approved and pr is not None:
            await self.publish_step("comment-opened", self.comment, opened_comment(pr.html_url, draft=False))
            status = "published"
        else:
            text = exhausted_comment(episode, draft_url=pr.html_url if pr else None, dashboard=self.dashboard)
            await self.publish_step("comment-exhausted", self.comment, text)
            status = "exhausted"
        await self.publish_step("remove-label", self.remove_label)
        return JobOutcome(status=status, run_id=self.run_id, pr_number=pr.number if pr else None,
                          pr_url=pr.html_url if pr else None, pushed_sha=commit)

    async def publish_to_fork(self, episode: Episode, checkout: Checkout) -> JobOutcome:
        """A fork's PR (bot/jobs/forks.py): an approved change as a patch in a comment; nothing pushed."""
        commit = episode.outcomes.commit if episode.status is EpisodeStatus.APPROVED else None
        if episode.status is EpisodeStatus.NO_CHANGE:
            await self.publish_step("comment-no-change", self.comment, no_change_comment(episode))
            return JobOutcome(status="no_change", run_id=self.run_id)
        if not commit:
            text = exhausted_comment(episode, draft_url=None, dashboard=self.dashboard)
            await self.publish_step("comment-exhausted", self.comment, text)
            return JobOutcome(status="exhausted", run_id=self.run_id)
        patch = await self.step("fork-patch", self.fork_patch, checkout.mirror, commit, checkout.base_sha)
        text = fork_patch_comment(patch, head_ref=self.job.head_ref or "", commit=commit, dashboard=self.dashboard)
        await self.publish_step("comment-patch", self.comment, text)
        return JobOutcome(status="patch_offered", run_id=self.run_id, pr_number=self.job.number)

    async def publish_iteration(self, episode: Episode, checkout: Checkout) -> JobOutcome:
        """Our own PR: push the approved commit to its branch, then answer every thread that asked."""
        job = self.job
        commit = episode.outcomes.commit if episode.status is EpisodeStatus.APPROVED else None
        pushed = None
        if commit:
            assert checkout.branch is not None
            await self.publish_step("push", self.push, checkout.mirror, commit, checkout.branch)
            pushed = commit
            self.done.append(f"pushed the change ({commit[:12]}) to this pull request's branch `{checkout.branch}`")
            await self.publish_step("check-run", self.check_run, commit, episode)
            pr = PullRef(number=job.number, html_url=f"https://github.com/{job.repo}/pull/{job.number}",
                         head_ref=checkout.branch, base_ref=job.base_ref or job.default_branch)
            await self.step("record-pr", self.record_pr, pr, checkout.branch)
        text = iteration_reply(episode, pushed_sha=pushed)
        answered_on_pr = False
        for index, target in enumerate(job.reply_to):
            if target.kind == "review_comment":
                await self.publish_step(f"reply-{index}", self.reply_in_thread, target.id, text)
            elif not answered_on_pr:  # the review body or an /improve comment: one answer on the PR
                await self.publish_step(f"reply-{index}", self.comment, text)
                answered_on_pr = True
        status = "updated" if pushed else ("no_change" if episode.status is EpisodeStatus.NO_CHANGE else "exhausted")
        return JobOutcome(status=status, run_id=self.run_id, pr_number=job.number, pushed_sha=pushed)

