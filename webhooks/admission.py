"""After the acknowledgement: decide whether a job may run, then enqueue it.

The receiver answers GitHub first and admits afterwards, because admission talks to GitHub (who is
asking, which installation, which branch a PR has). The delivery row holds the `JobRequest` until
admission finishes, so a process stopped in between admits it on its next start.

Steps: find the installation when the delivery had none → check the sender may write (one polite reply
when not) → read the PR when a comment on it did not say whose branch it is → enqueue → keep the
guidance in the store's history → 👀 on what triggered it.
"""

from __future__ import annotations

import asyncio
import logging

from githubkit.exception import GitHubException

from bot.github.client import GitHubApp
from bot.github.job_request import JobKind, JobQueue, JobRequest
from bot.github.messages import forget_usage, forgotten, permission_denied
from bot.github.payloads import PullRequest
from bot.github.permissions import PermissionChecker
from bot.github.publish import Publisher
from bot.learning.memory import forget
from bot.store import Store
from bot.store.github import DeliveryStatus, DeliveryUpdate, GitHubStore
from webhooks.delivery_log import DeliveryLog

log = logging.getLogger(__name__)

FORGET_RISK = 0.1  # one piece of advice deleted; it can be given again


class Admission:
    def __init__(
        self,
        *,
        github: GitHubApp,
        permissions: PermissionChecker,
        queue: JobQueue,
        store: Store,
        github_store: GitHubStore,
        deliveries: DeliveryLog,
    ) -> None:
        self.github = github
        self.permissions = permissions
        self.queue = queue
        self.store = store
        self.github_store = github_store
        self.deliveries = deliveries
        self._installations: dict[str, int] = {}  # repo → installation, for deliveries without one

    async def admit(self, job: JobRequest) -> tuple[DeliveryStatus, str | None]:
        """Admit `job` and record the result on its delivery; returns (status, detail)."""
        try:
            status, detail = await self._admit(job)
        except (GitHubException, OSError) as exc:
            status, detail = "failed", f"admission failed: {exc!r}"
            log.warning("delivery %s: %s", job.delivery_id, detail)
        # A failed admission keeps its job, so the next start tries again.
        await self.deliveries.update(
            DeliveryUpdate(delivery_id=job.delivery_id, status=status, detail=detail, keep_job=status == "failed")
        )
        return status, detail

    async def _admit(self, job: JobRequest) -> tuple[DeliveryStatus, str | None]:
        if job.installation_id is None:
            installation_id = self._installations.get(job.repo)
            installation_id = installation_id or await asyncio.to_thread(self.github_store.installation_for_repo, job.repo)
            installation_id = installation_id or await self.github.repo_installation_id(job.repo)
            if installation_id is None:
                return "ignored", f"the app is not installed on {job.repo}"
            self._installations[job.repo] = installation_id
            job = job.model_copy(update={"installation_id": installation_id})
        gh = self.github.installation_client(job.installation_id)
        publisher = Publisher(gh, job.repo)

        if job.needs_permission and not await self.permissions.can_write(
            job.installation_id, job.repo, job.triggered_by
        ):
            await publisher.comment(job.number, permission_denied(job.triggered_by))
            return "denied", f"{job.triggered_by} has no write permission on {job.repo}"

        if job.kind is JobKind.FORGET:
            return await self._forget(publisher, job)

        if job.kind in (JobKind.PR_ITERATE, JobKind.PR_FOREIGN) and job.head_sha is None:
            pr = PullRequest.model_validate(await publisher.get_pr(job.number))
            if pr.state == "closed":
                return "ignored", f"pull request #{job.number} is closed"
            job = job.model_copy(
                update={
                    "kind": JobKind.PR_ITERATE if pr.is_bot_pr(job.repo) else JobKind.PR_FOREIGN,
                    "head_ref": pr.head.ref,
                    "head_sha": pr.head.sha,
                    "base_ref": pr.base.ref,
                }
            )

        if not await self.queue.enqueue(job):
            return "duplicate", "already enqueued"
        for entry in job.guidance:
            await asyncio.to_thread(self.store.add_guidance, job.repo, entry)
        await self._acknowledge(publisher, job)
        return "enqueued", job.kind.value

    async def _forget(self, publisher: Publisher, job: JobRequest) -> tuple[DeliveryStatus, str | None]:
        """`/aura forget <id>`: delete the repository's memory entry (audited) and say so in a comment."""
        if job.memory_id is None:
            await publisher.comment(job.number, forget_usage())
            return "recorded", "forget without an entry id"
        deleted = await asyncio.to_thread(
            forget, self.store, job.repo, job.memory_id, actor=f"github:{job.triggered_by}", risk_score=FORGET_RISK
        )
        await publisher.comment(job.number, forgotten(job.triggered_by, job.memory_id, deleted=deleted))
        return "recorded", f"memory entry {job.memory_id} {'deleted' if deleted else 'not found'}"

    async def _acknowledge(self, publisher: Publisher, job: JobRequest) -> None:
        """👀 on the issue or comment that asked; a failed reaction never fails the job."""
        for target in job.reply_to[:1]:
            if target.kind == "review":
                continue  # reviews take no reactions; the job replies in their threads
            try:
                await publisher.react(target, "eyes")
            except GitHubException as exc:
                log.info("could not react to %s %s on %s: %r", target.kind, target.id, job.repo, exc)
