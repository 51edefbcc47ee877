"""What a job works with and the steps it takes, each returning something serializable and token-free.

`JobServices` is what the workflows of one process use (set by `configure` before DBOS launches).
`JobSteps` holds the plumbing (the durable step runner, the GitHub App, the publisher, the token) and
every step of a job: progress, sync, repository config, task, models, push, PR, review request, check
run, comments, label, feedback. The order they run in is bot/jobs/workflow.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dbos import DBOS
from pydantic import BaseModel

from bot.config import Settings
from bot.cycle.loop import SandboxOpener
from bot.cycle.episode import check_models
from bot.github.client import GitHubApp, RetryPolicy, is_transient
from bot.github.job_request import JobKind, JobRequest
from bot.github.messages import progress_comment, progress_marker
from bot.github.mirror import RepoMirror, is_transient_git
from bot.github.permissions import PermissionChecker
from bot.github.publish import Publisher, PullRef
from bot.github.repo_config import RepoConfigInvalid, parse_repo_config
from bot.github.text import sanitize
from bot.jobs import forks
from bot.jobs import git as jobgit
from bot.jobs.rate_limits import RateLimitWaiter, retry_window_s
from bot.jobs.report import ProgressReporter, check_run_output, dashboard_url
from bot.llm.client import ModelClient
from bot.llm.providers import build_llm
from bot.pr_body import render_pr
from bot.records import Episode, Task
from bot.store import Store
from bot.store.github import BotPullRequest, GitHubStore, HumanFeedback

log = logging.getLogger(__name__)


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
        raise RuntimeError("job services are not configured: call bot.jobs.job_steps.configure() before DBOS.launch()")
    return _services


# --- step outputs --------------------------------------------------------------------------------


class Checkout(BaseModel):
    mirror: str
    base_sha: str  # where the cycle starts
    branch: str | None = None  # the bot branch a PR iteration continues
    # the default branch's commit that config, plan, setup and baseline come from: base_sha for an issue,
    # the merge base with the default branch for a pull request (never the code under change)
    trusted_sha: str | None = None

    @property
    def trusted(self) -> str:
        return self.trusted_sha or self.base_sha


class ConfigResult(BaseModel):
    config: dict[str, Any] | None = None
    error: str | None = None


class JobOutcome(BaseModel):
    status: str  # published | updated | patch_offered (fork) | exhausted | no_change | invalid_config | failed
    # | publish_failed | feedback | skipped
    run_id: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    pushed_sha: str | None = None
    detail: str | None = None



def _derived_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class JobSteps:
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
        self.current_step = ""
        self.done: list[str] = []  # what publishing achieved so far, for the message if it gives up
        window = retry_window_s(self.settings.publish_attempts, self.settings.publish_retry_interval_s,
                                self.settings.github_retry_budget_s)
        self.rate_limits = RateLimitWaiter(window)

    # --- plumbing ------------------------------------------------------------------------------

    async def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """The StepRunner: a durable DBOS step (its output recorded; on replay returned, not re-run)."""
        self.current_step = name
        return await DBOS.run_step_async({"name": name}, fn, *args)

    async def publish_step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A step that talks to GitHub: a transient failure is retried by DBOS, pausing longer each time;
        a rate limit is waited out until its reset (bot/jobs/rate_limits.py)."""
        self.current_step = name
        s = self.settings
        options = {"name": name, "retries_allowed": s.publish_attempts > 1, "max_attempts": s.publish_attempts,
                   "interval_seconds": s.publish_retry_interval_s, "backoff_rate": 2.0, "should_retry": _retryable}

        async def call(*a: Any) -> Any:
            return await self.rate_limits.call(name, fn, *a)

        return await DBOS.run_step_async(options, call, *args)  # type: ignore[arg-type]

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

    def clone_url(self) -> str:
        """Where git goes with the token: the configured host. A job recorded with a network URL of another
        host (by an older version, from a payload) is sent there instead; a local path (tests) stays."""
        expected, url = self.settings.clone_url(self.job.repo), self.job.clone_url
        if url != expected and _is_network_url(url):
            log.warning("job %s: using %s, not the recorded %s", self.workflow_id, expected, url)
            return expected
        return url

    async def _token(self) -> str:
        assert self.job.installation_id is not None
        return await self.github().installation_token(self.job.installation_id)

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
        clone_url = self.clone_url()

        def work() -> Checkout:
            mirror = mirror_of.sync(job.repo, clone_url, token, pull_numbers=pulls)
            jobgit.point_mirror_head(mirror, job.default_branch)
            default = jobgit.resolve(mirror, f"refs/remotes/origin/{job.default_branch}")
            if job.kind is JobKind.PR_ITERATE:
                assert job.head_ref is not None
                sha = jobgit.resolve(mirror, f"refs/remotes/origin/{job.head_ref}")
                jobgit.set_branch(mirror, job.head_ref, sha)  # continue from what is on GitHub now
                return Checkout(mirror=str(mirror), base_sha=sha, branch=job.head_ref,
                                trusted_sha=jobgit.merge_base(mirror, sha, default))
            if job.kind is JobKind.PR_FOREIGN:
                sha = jobgit.resolve(mirror, f"refs/remotes/origin/pull/{job.number}")
                return Checkout(mirror=str(mirror), base_sha=sha, trusted_sha=jobgit.merge_base(mirror, sha, default))
            return Checkout(mirror=str(mirror), base_sha=default, trusted_sha=default)

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
        if job.kind is JobKind.PR_FOREIGN and not await self._author_can_write():
            # an outsider's pull request: their title and description stay out of the prompt; the task is
            # what the collaborator who asked said (the guidance) on the PR's code
            log.info("job %s: the text of %s's pull request left out of the prompt (no write access)",
                     self.workflow_id, job.pr_author or "(unknown)")
            return Task(title=f"Improve pull request #{job.number}", body="", source=source, repo=job.repo)
        return Task(title=job.title, body=job.body, source=source, repo=job.repo)

    async def _author_can_write(self) -> bool:
        job = self.job
        if not job.pr_author:
            return not job.fork  # an older job without the author: a fork's text is never trusted
        assert job.installation_id is not None
        permissions = PermissionChecker(self.github(), retry_budget_s=self.settings.github_retry_budget_s)
        return await permissions.can_write(job.installation_id, job.repo, job.pr_author)

    async def fork_patch(self, mirror: str, commit: str, base_sha: str) -> str:
        return await asyncio.to_thread(forks.format_patch, Path(mirror), base_sha, commit)

    async def _issue_comments(self, number: int) -> list[str]:
        """The issue's discussion, oldest first, sanitized: only what collaborators with write access
        wrote reaches the prompt (no bots, ourselves included, and no outsiders)."""
        p = self.publisher
        assert self.job.installation_id is not None
        permissions = PermissionChecker(self.github(), retry_budget_s=self.settings.github_retry_budget_s)
        response = await p.gh.rest.issues.async_list_comments(p.owner, p.name, number, per_page=100)
        out, skipped = [], set()
        for data in response.json():
            user = data.get("user") or {}
            login = str(user.get("login") or "")
            if user.get("type") == "Bot" or login.endswith("[bot]") or "<!-- aura-sicd:" in (data.get("body") or ""):
                continue
            if not login or not await permissions.can_write(self.job.installation_id, self.job.repo, login):
                skipped.add(login or "(unknown)")
                continue
            text = sanitize(data.get("body"), max_chars=4000)
            if text:
                out.append(f"@{login}: {text}")
        if skipped:
            log.info("job %s: comments by %s left out of the prompt (no write access)", self.workflow_id, ", ".join(sorted(skipped)))
        return out

    async def check_models(self, settings: Settings) -> None:
        llm = self.services.llm_factory(settings)
        try:
            await check_models(llm, settings)
        finally:
            await llm.aclose()

    async def push(self, mirror: str, sha: str, branch: str) -> bool:
        token = await self._token()
        return await asyncio.to_thread(lambda: jobgit.push_commit(Path(mirror), self.clone_url(), token, sha, branch,
                                                                  retry_budget_s=self.settings.github_retry_budget_s))

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


def _is_network_url(url: str) -> bool:
    """http(s)://, ssh://, git:// or scp-like `user@host:path`; not a local path or file:// URL."""
    scheme = urlsplit(url).scheme
    return (bool(scheme) and scheme != "file") or re.match(r"^[\w.-]+@[\w.-]+:", url) is not None


def _retryable(exc: BaseException) -> bool:
    """Worth another durable attempt: GitHub or git failed transiently."""
    return is_transient(exc) or is_transient_git(exc)


def _description(body: str) -> str:
    """The description part of our own PR body (the template's first section), else the whole body."""
    head, sep, _ = body.partition("## Changes Summary")
    return (head if sep else body).replace("## Description", "").strip()

