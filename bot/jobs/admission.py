"""After the acknowledgement: decide whether a job may run, then enqueue it.

The receiver answers GitHub first and its job ends there: the delivery row, written before the answer,
holds the `JobRequest`. Admission talks to GitHub (who is asking, which installation, which branch a PR
has) and enqueues, so it runs elsewhere: an `Admitter` reads the rows waiting for admission in
batches — in the `aura-sicd worker` process, or as a background loop in `serve` (`AURA_SERVE_ADMITS`).

`Admission` decides one job. Steps: find the installation when the delivery had none → check the sender
may write (one polite reply when not) → read the PR when a comment on it did not say whose branch it is
→ enqueue → keep the guidance in the store's history → 👀 on what triggered it.

`Admitter` claims rows atomically (`GitHubStore.claim_admissions`: one admitter per row, a lease so a
crashed admitter's rows are taken again), admits them with bounded concurrency and writes each outcome
only while it still holds the claim. A job is enqueued once whatever happens: its delivery row is unique
and the queue refuses a second job with the same delivery id (DBOS workflow id = delivery id).

`admitter_for` wires both for a process: the `serve` and `worker` commands both call it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from githubkit.exception import GitHubException
from pydantic import ValidationError

from bot.config import Settings
from bot.github.client import GitHubApp
from bot.github.job_request import JobKind, JobRequest
from bot.github.messages import forget_usage, forgotten, permission_denied
from bot.github.payloads import PullRequest
from bot.github.permissions import PermissionChecker
from bot.github.publish import Publisher
from bot.jobs.delivery_log import DeliveryLog
from bot.jobs.durable import executor_id
from bot.jobs.queue import JobQueue
from bot.learning.memory import forget
from bot.records import utcnow
from bot.store import Store
from bot.store.github import DeliveryInfo, DeliveryStatus, DeliveryUpdate, GitHubStore

log = logging.getLogger(__name__)

FORGET_RISK = 0.1  # one piece of advice deleted; it can be given again
REFUSAL_ACTION = "permission.refusal_reply"
REFUSAL_INTERVAL_S = 3600.0  # one polite refusal per user and issue per hour: nobody can make the bot post at will
RETRY_BUDGET_S = 20.0  # an admission waits out GitHub faults this long, well inside its timeout; then it backs off


class Admission:
    def __init__(
        self,
        *,
        github: GitHubApp,
        permissions: PermissionChecker,
        queue: JobQueue,
        store: Store,
        github_store: GitHubStore,
        refusal_interval_s: float = REFUSAL_INTERVAL_S,
    ) -> None:
        self.github = github
        self.refusal_interval_s = refusal_interval_s
        self.permissions = permissions
        self.queue = queue
        self.store = store
        self.github_store = github_store
        self._installations: dict[str, int] = {}  # repo → installation, for deliveries without one

    async def admit(self, job: JobRequest) -> tuple[DeliveryStatus, str | None]:
        """Admit `job`: (status, detail). GitHub or network trouble gives "failed" (tried again later)."""
        try:
            return await self._admit(job)
        except (GitHubException, OSError) as exc:
            detail = f"admission failed: {exc!r}"
            log.warning("delivery %s: %s", job.delivery_id, detail)
            return "failed", detail

    async def _admit(self, job: JobRequest) -> tuple[DeliveryStatus, str | None]:
        if job.installation_id is None:
            installation_id = self._installations.get(job.repo)
            installation_id = installation_id or await asyncio.to_thread(self.github_store.installation_for_repo, job.repo)
            installation_id = installation_id or await self.github.repo_installation_id(job.repo)
            if installation_id is None:
                return "ignored", f"the app is not installed on {job.repo}"
            self._installations[job.repo] = installation_id
            job = job.model_copy(update={"installation_id": installation_id})
        gh = self.github.installation_client(job.installation_id, retry=self.github.retry_policy(budget_s=RETRY_BUDGET_S))
        publisher = Publisher(gh, job.repo)

        if job.needs_permission and not await self.permissions.can_write(
            job.installation_id, job.repo, job.triggered_by
        ):
            detail = f"{job.triggered_by} has no write permission on {job.repo}"
            if not await self._refuse(publisher, job):
                detail += "; not replied (already told within the hour)"
            return "denied", detail

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
                    "fork": pr.head.repo is None or pr.head.repo.full_name.lower() != job.repo.lower(),
                    "pr_author": pr.user.login if pr.user else None,
                }
            )

        if not await self.queue.enqueue(job):
            return "duplicate", "already enqueued"
        for entry in job.guidance:
            await asyncio.to_thread(self.store.add_guidance, job.repo, entry)
        await self._acknowledge(publisher, job)
        return "enqueued", job.kind.value

    async def _refuse(self, publisher: Publisher, job: JobRequest) -> bool:
        """Tell someone without write access that nothing will run: at most once an hour per user and issue
        (the audit trail remembers the last reply, across restarts and processes). True when replied."""
        subject = f"{job.repo}#{job.number}:{job.triggered_by.lower()}"
        last = await asyncio.to_thread(self.store.last_audit_at, action=REFUSAL_ACTION, subject=subject)
        if last is not None and (utcnow() - last).total_seconds() < self.refusal_interval_s:
            log.info("delivery %s: no refusal reply to %s, one was sent at %s", job.delivery_id, subject, last)
            return False
        await publisher.comment(job.number, permission_denied(job.triggered_by))
        await asyncio.to_thread(self.store.audit, actor="admission", action=REFUSAL_ACTION, subject=subject,
                                decision="replied", details={"delivery_id": job.delivery_id})
        return True

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


class Admitter:
    """Admits the deliveries the receiver recorded: claim a batch, admit each, write each outcome.

    - `name` is stable per process and unique (like the DBOS executor id): at `start` the rows this name
      had claimed before a crash are released at once; anyone else's wait for their lease to run out.
    - At most `concurrency` admissions run at once; a new batch is claimed when half of that is free,
      so GitHub's latency overlaps and the store sees one claim transaction per batch.
    - `wake()` (the receiver, after recording a job) makes it look at once; otherwise it polls every
      `poll_s` (deliveries recorded by another process, failed ones whose backoff has passed).
    - A failed admission keeps its job and is tried again after `retry_base_s`, doubling up to
      `retry_max_s`. An admission is cut off after `timeout_s` (well inside the lease).
    - In the receiving process, `receiver_busy` says when acknowledgements are being sent: admissions
      then start at most `busy_rate` a second, so acknowledging keeps the CPU; the backlog is caught up
      as soon as the receiver is quiet (the rows are durable meanwhile). `clock` and `sleep` pace that
      (tests pass their own). Leases and backoff are times in the store, read from its clock.
    """

    def __init__(
        self,
        admission: Admission,
        deliveries: DeliveryLog,
        *,
        name: str,
        batch_size: int = 64,
        concurrency: int = 16,
        lease_s: float = 120.0,
        timeout_s: float = 60.0,
        poll_s: float = 1.0,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        receiver_busy: Callable[[], bool] | None = None,
        busy_rate: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if timeout_s >= lease_s:
            raise ValueError("an admission's timeout must be shorter than its claim's lease")
        if retry_base_s <= 0:
            raise ValueError("retry_base_s must be positive (a failing delivery would be retried without pause)")
        self.admission = admission
        self.deliveries = deliveries
        self.store = deliveries.store
        self.name = name
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.receiver_busy = receiver_busy
        self.busy_rate = busy_rate
        self.clock = clock
        self.sleep = sleep
        self._next_busy_start = 0.0
        self.admitted = 0  # outcomes written by this admitter (figures for benchmarks and logs)
        self._wake = asyncio.Event()
        self._claiming = asyncio.Lock()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Release this name's claims left by a crash, take the first batch, then keep admitting."""
        released = await asyncio.to_thread(self.store.release_claims, f"{self.name}:")
        if released:
            log.info("admitter %s: released %d deliveries claimed before a crash", self.name, released)
        await self._claim_and_spawn()  # leftovers from the last run start before serving begins
        self._stopping = False
        self._loop = asyncio.create_task(self._run(), name=f"admitter {self.name}")

    async def stop(self) -> None:
        """Stop claiming and let the admissions in flight finish (their outcomes are written)."""
        if self._loop is not None:
            # not cancelled: a claim being taken is finished and its rows admitted, never left held
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        await self._wait_inflight()

    def wake(self) -> None:
        self._wake.set()

    async def settle(self) -> None:
        """Admit everything that can be admitted now, and wait for it (tests, benchmarks)."""
        while True:
            await self._wait_inflight()
            if not await self._claim_and_spawn() and not self._inflight:
                return

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        low_water = max(1, min(self.batch_size, self.concurrency) // 2)
        while not self._stopping:
            if self.concurrency - len(self._inflight) < low_water:
                await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
                continue
            self._wake.clear()
            try:
                claimed = await self._claim_and_spawn()
            except Exception:  # the store is down: keep the loop, try again at the next poll
                log.exception("admitter %s: cannot claim deliveries", self.name)
                claimed = 0
            if claimed == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                except TimeoutError:
                    pass

    async def _claim_and_spawn(self) -> int:
        async with self._claiming:
            room = self.concurrency - len(self._inflight)
            if room <= 0:
                return 0
            claim = f"{self.name}:{uuid.uuid4().hex[:12]}"
            claimed = await asyncio.to_thread(
                self.store.claim_admissions, claim, limit=min(room, self.batch_size), lease_s=self.lease_s
            )
            for delivery in claimed:
                task = asyncio.create_task(self._admit_one(delivery, claim))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            return len(claimed)

    async def _wait_inflight(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _take_turn(self) -> None:
        """While the receiver is busy, admissions start one at a time, `busy_rate` a second."""
        while self.receiver_busy is not None and self.receiver_busy():
            now = self.clock()
            if now >= self._next_busy_start:
                self._next_busy_start = now + 1 / self.busy_rate
                return
            await self.sleep(self._next_busy_start - now)

    async def _admit_one(self, delivery: DeliveryInfo, claim: str) -> None:
        await self._take_turn()
        keep_job = False
        try:
            job = JobRequest.model_validate(delivery.job)
        except ValidationError as exc:  # written by an older version that no longer reads the same
            status, detail = "failed", f"the stored job cannot be read: {exc.errors()[0]['msg']}"
        else:
            try:
                status, detail = await asyncio.wait_for(self.admission.admit(job), self.timeout_s)
            except TimeoutError:
                status, detail = "failed", f"admission took longer than {self.timeout_s:.0f} s"
            except Exception as exc:  # a bug or the store: logged, and tried again after the backoff
                log.exception("delivery %s: admission failed", delivery.delivery_id)
                status, detail = "failed", f"admission failed: {exc!r}"
            keep_job = status == "failed"
        retry = min(self.retry_base_s * 2 ** (delivery.attempts - 1), self.retry_max_s) if keep_job else None
        update = DeliveryUpdate(
            delivery_id=delivery.delivery_id, status=status, detail=detail, keep_job=keep_job, claim=claim,
            retry_after_s=retry,
        )
        try:
            if not await self.deliveries.update(update):
                log.warning("delivery %s: its claim ran out before admission finished; the outcome of "
                            "whoever took it over counts", delivery.delivery_id)
                return
        except Exception:  # the row stays claimed; it is taken again when the lease runs out
            log.exception("delivery %s: cannot write the admission's outcome", delivery.delivery_id)
            return
        self.admitted += 1


def admitter_for(
    settings: Settings,
    role: str,
    *,
    github: GitHubApp,
    queue: JobQueue,
    store: Store,
    github_store: GitHubStore,
    deliveries: DeliveryLog | None = None,
    permission_ttl_s: float = 60.0,
    **options: Any,
) -> Admitter:
    """The admitter of this process, named `<role>:<executor id>` (stable and unique per process, so a
    restart takes back its own claims at once). `serve` passes the receiver's `deliveries` (one group
    commit for both); `options` go to `Admitter` (concurrency, polling, the receiver's busy signal)."""
    admission = Admission(
        github=github,
        permissions=PermissionChecker(github, ttl_s=permission_ttl_s),
        queue=queue,
        store=store,
        github_store=github_store,
    )
    name = f"{role}:{executor_id(settings)}"
    return Admitter(admission, deliveries or DeliveryLog(github_store), name=name, **options)
