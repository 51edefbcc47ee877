"""The durable job: one DBOS workflow per admitted delivery, every side effect in a durable step.

    sync mirror → repo config at the base commit → task (+ issue comments) → models pulled?
    → the episode (bot/episode.py: prepare from learning, Cycle.run with every model call, sandbox run
      and commit a step, finish the run, learn)
    → push (remote sha checked first) → PR (found before created) → review request, check run,
      comments / review replies, label removed

A process killed mid-job resumes after restart at the last finished step: DBOS replays the workflow,
returning recorded step outputs instead of running them again, so nothing is pushed, opened or
commented twice. The workflow decides only from step outputs (deterministic on replay); anything
random, timed or fetched happens inside a step. Run and episode ids derive from the workflow id.

The installation token is fetched inside the steps that need it (`GitHubApp.installation_token`
caches it in memory) and never returned from a step, so it never reaches DBOS's tables.

Coalescing: jobs with a `coalesce_key` (a review and its line comments) go through a DBOS debouncer
onto a small queue; each such job is also sent as a message to the debounced workflow, which, when the
burst is over, folds everything it received into one job and enqueues it on the job queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from pydantic import BaseModel

from bot.config import Settings
from bot.cycle import CycleRequest, SandboxOpener
from bot.episode import EpisodeResult, EpisodeRunner, check_models
from bot.events import EventBus
from bot.github.client import GitHubApp, RetryPolicy
from bot.github.job_request import JobKind, JobRequest
from bot.github.messages import invalid_repo_config, progress_comment, progress_marker
from bot.github.mirror import RepoMirror
from bot.github.publish import Publisher, PullRef
from bot.github.repo_config import RepoConfig, RepoConfigInvalid, parse_repo_config
from bot.github.text import sanitize
from bot.jobs import git as jobgit
from bot.jobs.report import (
    ProgressReporter,
    check_run_output,
    dashboard_url,
    exhausted_comment,
    failed_comment,
    iteration_reply,
    no_change_comment,
    opened_comment,
)
from bot.llm import LLMError, ModelClient
from bot.providers import build_llm
from bot.pr_body import render_pr
from bot.records import Episode, EpisodeStatus, Task
from bot.store import Store
from bot.store.github import BotPullRequest, GitHubStore, HumanFeedback
from bot.workspace import GitError, WorkspaceError
from sandbox import SandboxError
from sandbox.repo_config import CONFIG_PATH

log = logging.getLogger(__name__)

JOB_QUEUE = "aura-sicd-jobs"
COALESCE_QUEUE = "aura-sicd-coalesce"
COALESCE_TOPIC = "coalesced-job"
JOB_WORKFLOW = "aura-sicd.job"
COALESCE_WORKFLOW = "aura-sicd.coalesce"


# --- what the workflows run with (one set per process) -------------------------------------------


@dataclass
class JobServices:
    settings: Settings
    store: Store
    github: Callable[[], GitHubApp | None]  # the App once configured (serve registers it at first run)
    mirror: RepoMirror
    llm_factory: Callable[[Settings], ModelClient] = build_llm
    sandbox_opener: SandboxOpener | None = None
    remember_label: Callable[[str, str], None] | None = None  # repo → its own trigger label

    @property
    def github_store(self) -> GitHubStore:
        return GitHubStore(self.store)


_services: JobServices | None = None


def configure(services: JobServices | None) -> None:
    """Set what the job workflows of this process use; before DBOS launches (recovery starts at once)."""
    global _services
    _services = services


def current_services() -> JobServices:
    if _services is None:
        raise RuntimeError("job services are not configured: call bot.jobs.workflow.configure() before DBOS.launch()")
    return _services


# --- step outputs --------------------------------------------------------------------------------


class Checkout(BaseModel):
    mirror: str
    base_sha: str
    branch: str | None = None  # the bot branch a PR iteration continues


class ConfigResult(BaseModel):
    config: dict[str, Any] | None = None
    error: str | None = None


class JobOutcome(BaseModel):
    status: str  # published | updated | exhausted | no_change | invalid_config | failed | feedback | skipped
    run_id: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    pushed_sha: str | None = None
    detail: str | None = None


# --- the workflows -------------------------------------------------------------------------------


@DBOS.workflow(name=JOB_WORKFLOW)
async def job_workflow(job: dict[str, Any]) -> dict[str, Any]:
    run = JobRun(current_services(), JobRequest.model_validate(job), DBOS.workflow_id or job["delivery_id"])
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
    with SetWorkflowID(workflow_id), SetEnqueueOptions(queue_partition_key=merged.partition_key):
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


def _derived_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


# --- one job -------------------------------------------------------------------------------------


class JobRun:
    def __init__(self, services: JobServices, job: JobRequest, workflow_id: str) -> None:
        self.services = services
        self.settings = services.settings
        self.job = job
        self.workflow_id = workflow_id
        self.run_id = _derived_id("run", workflow_id)  # the same on every replay of this workflow
        self.episode_id = _derived_id("episode", workflow_id)
        self.dashboard = dashboard_url(self.settings.public_url, self.run_id)
        self._retry: RetryPolicy | None = None
        self._publisher: Publisher | None = None
        self.progress_id: int | None = None
        self.reporter: ProgressReporter | None = None

    # --- plumbing ------------------------------------------------------------------------------

    async def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """The StepRunner: a durable DBOS step (its output recorded; on replay returned, not re-run)."""
        return await DBOS.run_step_async({"name": name}, fn, *args)

    def github(self) -> GitHubApp:
        app = self.services.github()
        if app is None:
            raise RuntimeError("no GitHub App is configured in this process")
        return app

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            app = self.github()
            self._retry = app.retry_policy()  # one policy per job caps its total waiting on GitHub
            assert self.job.installation_id is not None
            self._publisher = Publisher(app.installation_client(self.job.installation_id, retry=self._retry), self.job.repo)
        return self._publisher

    async def _token(self) -> str:
        assert self.job.installation_id is not None
        return await self.github().installation_token(self.job.installation_id)

    # --- the job -------------------------------------------------------------------------------

    async def run(self) -> JobOutcome:
        job = self.job
        if job.kind is JobKind.FEEDBACK:
            await self.step("record-feedback", self.record_feedback)
            return JobOutcome(status="feedback", detail="merged" if job.merged else "closed unmerged")
        if job.installation_id is None:
            return JobOutcome(status="skipped", detail="no installation for this repository")

        self.progress_id = await self.step("progress-start", self.start_progress)
        checkout: Checkout = await self.step("sync", self.sync)
        config: ConfigResult = await self.step("repo-config", self.read_config, checkout.base_sha)
        if config.error is not None:
            await self.step("comment-invalid-config", self.comment, invalid_repo_config(CONFIG_PATH, config.error))
            await self.step("progress-end", self.end_progress, "stopped: invalid repository configuration")
            await self.step("remove-label", self.remove_label)
            return JobOutcome(status="invalid_config", detail=config.error)
        repo_config = RepoConfig.model_validate(config.config or {})
        if repo_config.label and self.services.remember_label is not None:
            self.services.remember_label(job.repo, repo_config.label)
        settings = repo_config.apply(self.settings)

        task: Task = await self.step("task", self.build_task)
        try:
            await self.step("check-models", self.check_models, settings)
            result = await self.run_episode(settings, checkout, task)
            if result.error is not None or result.episode is None:
                raise LLMError(result.error or "the model server failed")
        except (LLMError, WorkspaceError, SandboxError, GitError) as exc:
            await self.step("comment-failed", self.comment, failed_comment(str(exc), self.dashboard))
            await self.step("progress-end", self.end_progress, "failed")
            return JobOutcome(status="failed", run_id=self.run_id, detail=str(exc))
        episode = result.episode

        if job.kind is JobKind.PR_ITERATE:
            outcome = await self.publish_iteration(episode, checkout)
        else:
            outcome = await self.publish_new_pr(episode, checkout)
        await self.step("progress-end", self.end_progress, f"done: {outcome.status}")
        return outcome

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
            guidance=job.guidance,
            kind="github",
            # a PR iteration only ever pushes approved work onto a branch people are reviewing
            commit_best_on_exhaustion=settings.draft_pr_on_failure and job.kind is not JobKind.PR_ITERATE,
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
            await self.step("comment-no-change", self.comment, no_change_comment(episode))
            await self.step("remove-label", self.remove_label)
            return JobOutcome(status="no_change", run_id=self.run_id)
        commit = episode.outcomes.get("commit")
        approved = episode.status is EpisodeStatus.APPROVED
        pr: PullRef | None = None
        if commit:
            branch = str(episode.context["branch"])
            await self.step("push", self.push, checkout.mirror, commit, branch)
            pr = await self.step("open-pr", self.open_pr, episode, branch, not approved)
            await self.step("request-review", self.request_review, pr.number)
            await self.step("record-pr", self.record_pr, pr, branch)
            await self.step("check-run", self.check_run, commit, episode)
        if approved and pr is not None:
            await self.step("comment-opened", self.comment, opened_comment(pr.html_url, draft=False))
            status = "published"
        else:
            text = exhausted_comment(episode, draft_url=pr.html_url if pr else None, dashboard=self.dashboard)
            await self.step("comment-exhausted", self.comment, text)
            status = "exhausted"
        await self.step("remove-label", self.remove_label)
        return JobOutcome(status=status, run_id=self.run_id, pr_number=pr.number if pr else None,
                          pr_url=pr.html_url if pr else None, pushed_sha=commit)

    async def publish_iteration(self, episode: Episode, checkout: Checkout) -> JobOutcome:
        """Our own PR: push the approved commit to its branch, then answer every thread that asked."""
        job = self.job
        commit = episode.outcomes.get("commit") if episode.status is EpisodeStatus.APPROVED else None
        pushed = None
        if commit:
            assert checkout.branch is not None
            await self.step("push", self.push, checkout.mirror, commit, checkout.branch)
            pushed = commit
            await self.step("check-run", self.check_run, commit, episode)
            pr = PullRef(number=job.number, html_url=f"https://github.com/{job.repo}/pull/{job.number}",
                         head_ref=checkout.branch, base_ref=job.base_ref or job.default_branch)
            await self.step("record-pr", self.record_pr, pr, checkout.branch)
        text = iteration_reply(episode, pushed_sha=pushed)
        answered_on_pr = False
        for index, target in enumerate(job.reply_to):
            if target.kind == "review_comment":
                await self.step(f"reply-{index}", self.reply_in_thread, target.id, text)
            elif not answered_on_pr:  # the review body or an /improve comment: one answer on the PR
                await self.step(f"reply-{index}", self.comment, text)
                answered_on_pr = True
        status = "updated" if pushed else ("no_change" if episode.status is EpisodeStatus.NO_CHANGE else "exhausted")
        return JobOutcome(status=status, run_id=self.run_id, pr_number=job.number, pushed_sha=pushed)

    # --- the steps (each returns something serializable and token-free) ------------------------

    async def start_progress(self) -> int:
        body = progress_comment(self.workflow_id, iteration=1, max_iterations=self.settings.max_iterations,
                                state="starting", dashboard_url=self.dashboard)
        return await self.publisher.upsert_comment(self.job.number, progress_marker(self.workflow_id), body)

    async def _edit_progress(self, body: str) -> None:
        if self.progress_id is not None:
            await self.publisher.edit_comment(self.progress_id, body)

    async def end_progress(self, state: str) -> None:
        if self.reporter is not None:  # the cycle ran: keep its last figures, change the state line
            body = self.reporter.render(state)
        else:
            body = progress_comment(self.workflow_id, iteration=1, max_iterations=self.settings.max_iterations,
                                    state=state, dashboard_url=self.dashboard)
        await self._edit_progress(body)

    async def sync(self) -> Checkout:
        job = self.job
        token = await self._token()
        pulls = (job.number,) if job.kind is JobKind.PR_FOREIGN else ()
        mirror_of = self.services.mirror

        def work() -> Checkout:
            mirror = mirror_of.sync(job.repo, job.clone_url, token, pull_numbers=pulls)
            jobgit.point_mirror_head(mirror, job.default_branch)
            if job.kind is JobKind.PR_ITERATE:
                assert job.head_ref is not None
                sha = jobgit.resolve(mirror, f"refs/remotes/origin/{job.head_ref}")
                jobgit.set_branch(mirror, job.head_ref, sha)  # continue from what is on GitHub now
                return Checkout(mirror=str(mirror), base_sha=sha, branch=job.head_ref)
            if job.kind is JobKind.PR_FOREIGN:
                sha = jobgit.resolve(mirror, f"refs/remotes/origin/pull/{job.number}")
                return Checkout(mirror=str(mirror), base_sha=sha)
            return Checkout(mirror=str(mirror), base_sha=jobgit.resolve(mirror, f"refs/remotes/origin/{job.default_branch}"))

        return await asyncio.to_thread(work)

    async def read_config(self, base_sha: str) -> ConfigResult:
        text = await asyncio.to_thread(jobgit.read_config_text, Path(self.services.mirror.mirror_path(self.job.repo)), base_sha)
        try:
            config = parse_repo_config(text)
        except RepoConfigInvalid as exc:
            return ConfigResult(error=exc.text)
        return ConfigResult(config=config.model_dump(mode="json", exclude_defaults=True))

    async def build_task(self) -> Task:
        job = self.job
        source = f"github:{job.repo}#{job.number}"
        if job.kind is JobKind.ISSUE:
            comments = await self._issue_comments(job.number)
            body = job.body + (("\n\n## Comments\n\n" + "\n\n".join(comments)) if comments else "")
            return Task(title=job.title, body=body.strip(), source=source, repo=job.repo)
        if job.kind is JobKind.PR_ITERATE:
            bot_pr = await asyncio.to_thread(self.services.github_store.get_bot_pr_by_number, job.repo, job.number)
            if bot_pr is not None and bot_pr.issue_number is not None and bot_pr.issue_number != job.number:
                issue = (await self.publisher.gh.rest.issues.async_get(
                    self.publisher.owner, self.publisher.name, bot_pr.issue_number)).json()
                return Task(title=sanitize(issue.get("title"), max_chars=300), body=sanitize(issue.get("body")),
                            source=f"github:{job.repo}#{bot_pr.issue_number}", repo=job.repo)
            title = job.title.removeprefix("[draft] ").removeprefix("Aura SICD: ")
            return Task(title=title, body=_description(job.body), source=source, repo=job.repo)
        return Task(title=job.title, body=job.body, source=source, repo=job.repo)

    async def _issue_comments(self, number: int) -> list[str]:
        """The issue's discussion, oldest first, without bots (ourselves included), sanitized."""
        p = self.publisher
        response = await p.gh.rest.issues.async_list_comments(p.owner, p.name, number, per_page=100)
        out = []
        for data in response.json():
            user = data.get("user") or {}
            login = str(user.get("login") or "")
            if user.get("type") == "Bot" or login.endswith("[bot]") or "<!-- aura-sicd:" in (data.get("body") or ""):
                continue
            text = sanitize(data.get("body"), max_chars=4000)
            if text:
                out.append(f"@{login}: {text}")
        return out

    async def check_models(self, settings: Settings) -> None:
        llm = self.services.llm_factory(settings)
        try:
            await check_models(llm, settings)
        finally:
            await llm.aclose()

    async def push(self, mirror: str, sha: str, branch: str) -> bool:
        token = await self._token()
        return await asyncio.to_thread(jobgit.push_commit, Path(mirror), self.job.clone_url, token, sha, branch)

    async def open_pr(self, episode: Episode, branch: str, draft: bool) -> PullRef:
        job = self.job
        closes = job.number if job.kind is JobKind.ISSUE else None
        title, body = render_pr(episode, closes=closes)
        base = job.default_branch
        if job.kind is JobKind.PR_FOREIGN:
            assert job.head_ref is not None
            base = job.head_ref  # never push to their branch: a PR into it instead
            body += f"\nImproves #{job.number}: opened against that pull request's branch, which aura-sicd never pushes to.\n"
        return await self.publisher.open_pr(head=branch, base=base, title=title, body=body, draft=draft)

    async def request_review(self, number: int) -> None:
        if self.job.triggered_by:
            await self.publisher.request_review(number, [self.job.triggered_by])

    async def record_pr(self, pr: PullRef, branch: str) -> None:
        job = self.job
        record = BotPullRequest(
            repo=job.repo, number=pr.number, branch=branch, base_ref=pr.base_ref,
            proposal_id=branch.removeprefix("aura-sicd/"), run_id=self.run_id,
            issue_number=None if job.kind is JobKind.PR_ITERATE else job.number, state="open", html_url=pr.html_url,
        )
        if job.kind is JobKind.PR_ITERATE:
            known = await asyncio.to_thread(self.services.github_store.get_bot_pr_by_number, job.repo, job.number)
            record.issue_number = known.issue_number if known else None
            record.html_url = known.html_url if known and known.html_url else record.html_url
        await asyncio.to_thread(self.services.github_store.upsert_bot_pr, record)

    async def check_run(self, sha: str, episode: Episode) -> int:
        conclusion, title, summary, text = check_run_output(episode)
        return await self.publisher.create_check_run(sha, title=title, summary=summary, text=text,
                                                     conclusion=conclusion, details_url=self.dashboard)  # type: ignore[arg-type]

    async def comment(self, body: str) -> int:
        return (await self.publisher.comment(self.job.number, body)).id

    async def reply_in_thread(self, comment_id: int, body: str) -> int:
        return (await self.publisher.reply_to_review_comment(self.job.number, comment_id, body)).id

    async def remove_label(self) -> None:
        if self.job.label and self.job.kind is JobKind.ISSUE:
            await self.publisher.remove_label(self.job.number, self.job.label)

    async def record_feedback(self) -> None:
        job = self.job
        store = self.services.github_store
        feedback = HumanFeedback(delivery_id=job.delivery_id, repo=job.repo, number=job.number, merged=bool(job.merged),
                                 branch=job.head_ref, actor=job.triggered_by or None)
        await asyncio.to_thread(store.record_feedback, feedback)  # once per delivery: a no-op if the receiver did it
        await asyncio.to_thread(store.set_bot_pr_state, job.repo, job.number, "merged" if job.merged else "closed")


def _description(body: str) -> str:
    """The description part of our own PR body (the template's first section), else the whole body."""
    head, sep, _ = body.partition("## Changes Summary")
    return (head if sep else body).replace("## Description", "").strip()
