"""The scheduled scan's jobs (bot/jobs/scheduler.py enqueues the first), as durable workflows like any job.

    SCAN:    sync the mirror → repo config → the checks on the default branch in the sandbox → findings
             → leave out findings that have an open PR or one a maintainer closed, keep as many as
             `max_open_prs` leaves room for → one FINDING job each, enqueued from the workflow, once
             per finding and commit (a finding that was not fixed is tried again when the branch moves)
    FINDING: sync → repo config → the episode on the finding (bot/cycle/episode.py) → when a fix is approved:
             push, a PR labelled `autonomy.label` whose body names the finding, recorded as a bot PR

Both stop at once when autonomy is not allowed (any more): `ENABLE_AUTONOMY` off or `SAFE_MODE` on, or
the repository's config no longer has an `autonomy` block. Nothing is commented anywhere: there is no
issue, and a finding that was not fixed leaves no trace on GitHub (its episode is on the dashboard).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from bot.github.job_request import JobKind, JobRequest
from bot.github.publish import PullRef
from bot.github.repo_config import AutonomyConfig, RepoConfig
from bot.jobs.fairness import queue_partition
from bot.jobs.job_steps import Checkout, JobOutcome
from bot.jobs.scheduler import autonomy_allowed
from bot.jobs.workflow import JOB_QUEUE, JobRun, job_workflow
from bot.llm.client import LLMError
from bot.pr_body import render_pr
from bot.records import Episode, EpisodeStatus
from bot.runs.scan import checks_on_base, findings_of
from bot.runs.scan_report import MAX_DETAIL_CHARS, Finding
from bot.store.github import BotPullRequest
from bot.workspace import GitError, WorkspaceError
from sandbox import SandboxError

KEEP_OUT = ("open", "closed")  # a finding with an open PR waits; one a maintainer closed is never repeated


def choose_findings(findings: list[Finding], states: dict[str, str], open_prs: int, max_open_prs: int) -> list[Finding]:
    """The findings to work now: none already open or closed by a maintainer, as many as there is room for."""
    room = max(0, max_open_prs - open_prs)
    return [f for f in findings if states.get(f.key) not in KEEP_OUT][:room]


def finding_section(finding: Finding, base_sha: str) -> str:
    detail = "\n".join(finding.details)[-MAX_DETAIL_CHARS:]
    return (f"\n## Finding\n\nA scheduled scan of `{base_sha[:12]}` found this (`{finding.check}` check): "
            f"{finding.title}\n\n```\n{detail}\n```\n\n<!-- aura-sicd:finding {finding.key} -->\n")


class AutonomousJobRun(JobRun):
    async def configured(self) -> tuple[Checkout, RepoConfig, AutonomyConfig] | JobOutcome:
        """The mirror and the repository's autonomy settings, or the outcome that ends the job."""
        if (why := autonomy_allowed(self.settings)) is not None:
            return JobOutcome(status="skipped", detail=why)
        checkout: Checkout = await self.step("sync", self.sync)
        config = await self.step("repo-config", self.read_config, checkout.base_sha)
        if config.error is not None:
            return JobOutcome(status="invalid_config", detail=config.error)
        repo_config = RepoConfig.model_validate(config.config or {})
        if repo_config.autonomy is None:
            return JobOutcome(status="skipped", detail="the repository configuration has no autonomy schedule")
        return checkout, repo_config, repo_config.autonomy


class ScanJobRun(AutonomousJobRun):
    async def run(self) -> JobOutcome:
        configured = await self.configured()
        if isinstance(configured, JobOutcome):
            return configured
        checkout, _, autonomy = configured
        try:
            findings: list[Finding] = await self.step("scan-base", self.scan_base, checkout)
        except (SandboxError, WorkspaceError, GitError) as exc:
            return JobOutcome(status="failed", detail=f"the checks on {checkout.base_sha[:12]} could not run: {exc}")
        chosen: list[Finding] = await self.step("choose-findings", self.choose, findings, autonomy.max_open_prs)
        queue = await DBOS.retrieve_queue_async(JOB_QUEUE)
        if queue is None:
            raise RuntimeError(f"the queue {JOB_QUEUE} is not registered")
        enqueued, worked = [], []
        for finding in chosen:
            job = self.finding_job(finding, checkout.base_sha)
            if await DBOS.get_workflow_status_async(job.delivery_id) is not None:
                worked.append(finding.key)  # worked on this commit already (a step: replays the same)
                continue
            partition = queue_partition(job, self.settings)
            with SetWorkflowID(job.delivery_id), SetEnqueueOptions(queue_partition_key=partition):
                await queue.enqueue_async(job_workflow, job.model_dump(mode="json"))
            enqueued.append(finding.key)
        detail = f"{len(findings)} finding(s) on {checkout.base_sha[:12]}, {len(enqueued)} enqueued: {', '.join(enqueued)}"
        if worked:
            detail += f"; already worked on this commit: {', '.join(worked)}"
        return JobOutcome(status="scanned", detail=detail)

    def finding_job(self, finding: Finding, base_sha: str) -> JobRequest:
        """One job per finding and commit: a later scan of the same commit does not work it again."""
        digest = hashlib.sha256(finding.key.encode()).hexdigest()[:16]
        return self.job.model_copy(update={
            "kind": JobKind.FINDING, "delivery_id": f"finding:{self.job.repo}:{digest}@{base_sha[:12]}",
            "title": finding.title, "finding": finding.model_dump(mode="json"),
        })

    async def scan_base(self, checkout: Checkout) -> list[Finding]:
        report = await checks_on_base(self.settings, Path(checkout.mirror), checkout.base_sha,
                                      opener=self.services.sandbox_opener)
        return findings_of(report)

    async def choose(self, findings: list[Finding], max_open_prs: int) -> list[Finding]:
        store = self.services.github_store
        states = await asyncio.to_thread(store.finding_pull_states, self.job.repo)
        open_prs = await asyncio.to_thread(store.count_open_bot_prs, self.job.repo)
        return choose_findings(findings, states, open_prs, max_open_prs)


class FindingJobRun(AutonomousJobRun):
    async def run(self) -> JobOutcome:
        configured = await self.configured()
        if isinstance(configured, JobOutcome):
            return configured
        checkout, repo_config, autonomy = configured
        if self.job.finding is None:
            return JobOutcome(status="skipped", detail="the job names no finding")
        finding = Finding.model_validate(self.job.finding)
        # only an approved fix becomes a PR: no drafts from a scan
        settings = repo_config.apply(self.settings).model_copy(update={"draft_pr_on_failure": False})
        try:
            await self.step("check-models", self.check_models, settings)
            result = await self.run_episode(settings, checkout, finding.task(self.job.repo))
            if result.error is not None or result.episode is None:
                raise LLMError(result.error or "the model server failed")
        except (LLMError, WorkspaceError, SandboxError, GitError) as exc:
            return JobOutcome(status="failed", run_id=self.run_id, detail=str(exc))
        episode = result.episode
        commit = episode.outcomes.commit
        if episode.status is not EpisodeStatus.APPROVED or not commit:
            return JobOutcome(status=episode.status.value, run_id=self.run_id, detail=finding.key)
        branch = episode.context.branch
        await self.step("push", self.push, checkout.mirror, commit, branch)
        pr: PullRef = await self.step("open-finding-pr", self.open_finding_pr, episode, branch, finding, checkout.base_sha)
        await self.step("label", self.label, pr.number, autonomy.label)
        await self.step("record-pr", self.record_finding_pr, pr, branch)
        await self.step("check-run", self.check_run, commit, episode)
        return JobOutcome(status="published", run_id=self.run_id, pr_number=pr.number, pr_url=pr.html_url,
                          pushed_sha=commit, detail=finding.key)

    async def open_finding_pr(self, episode: Episode, branch: str, finding: Finding, base_sha: str) -> PullRef:
        title, body = render_pr(episode)
        return await self.publisher.open_pr(head=branch, base=self.job.default_branch, title=title,
                                            body=body + finding_section(finding, base_sha))

    async def label(self, number: int, label: str) -> None:
        p = self.publisher
        await p.gh.rest.issues.async_add_labels(p.owner, p.name, number, data={"labels": [label]})

    async def record_finding_pr(self, pr: PullRef, branch: str) -> None:
        record = BotPullRequest(repo=self.job.repo, number=pr.number, branch=branch, base_ref=pr.base_ref,
                                proposal_id=branch.removeprefix("aura-sicd/"), run_id=self.run_id, state="open",
                                html_url=pr.html_url)
        await asyncio.to_thread(self.services.github_store.upsert_bot_pr, record)


RUNS: dict[JobKind, type[JobRun]] = {JobKind.SCAN: ScanJobRun, JobKind.FINDING: FindingJobRun}
