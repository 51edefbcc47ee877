"""The admitter: atomic claims, crash recovery, racing admitters, one reply, backoff, the receiver's part.

Two admitters get two `Store` objects on one SQLite file (two connection pools, no shared lock), as two
processes would; GitHub is faked with respx, the queue records every enqueue it is asked for. Leases and
backoff are times the store reads from its clock: the `clock` fixture replaces it, and tests move it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp
from bot.github.job_request import JobRequest
from bot.github.permissions import PermissionChecker
from bot.jobs.admission import Admission, Admitter
from bot.jobs.delivery_log import DeliveryLog
from bot.jobs.memory_queue import InMemoryJobQueue
from bot.records import utcnow
from bot.store import Store
from bot.store.github import DeliveryRecord, DeliveryUpdate, GitHubStore
from tests.fakes.clock import ManualClock
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, FakeGitHub, private_key_pem, webhook_bytes
from tests.wait import wait_for
from tests.webhooks.conftest import deliver, make_client

REPO = "Codertocat/Hello-World"


class RecordingQueue(InMemoryJobQueue):
    """Counts every enqueue call, so a test sees double admissions the queue's own dedup would hide."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def enqueue(self, job: JobRequest) -> bool:
        self.calls.append(job.delivery_id)
        return await super().enqueue(job)


def job_payload(delivery_id: str) -> dict:
    return {
        "kind": "issue", "delivery_id": delivery_id, "event": "issues.labeled", "installation_id": 7, "repo": REPO,
        "clone_url": f"https://github.com/{REPO}.git", "number": 1, "title": "Spelling error",
        "triggered_by": "Codertocat", "label": "aura-sicd", "reply_to": [{"kind": "issue", "id": 1}],
    }


def record(store: GitHubStore, *ids: str) -> None:
    store.write_deliveries([DeliveryRecord(delivery_id=i, event="issues", action="labeled", repo=REPO,
                                           job=job_payload(i)) for i in ids])


@pytest.fixture
def clock(monkeypatch) -> ManualClock:
    """The store's clock (`bot.store.github.utcnow`), moved by the test."""
    manual = ManualClock(start=utcnow())
    monkeypatch.setattr("bot.store.github.utcnow", manual.utcnow)
    return manual


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aura.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[GitHubStore]:
    with Store.open(db_url) as opened:
        yield GitHubStore(opened)


@pytest.fixture
def github(github: FakeGitHub) -> FakeGitHub:
    github.installations[REPO] = 7
    return github


@pytest.fixture
async def app() -> GitHubApp:
    creds = AppCredentials(app_id=APP_ID, private_key=private_key_pem(), webhook_secret=WEBHOOK_SECRET)
    gh = GitHubApp(creds, api_url="https://api.github.com", retry_backoff_s=0.01, retry_budget_s=0.5)  # a down GitHub fails fast here
    yield gh
    await gh.aclose()


def make_admitter(db: Store, app: GitHubApp, queue: InMemoryJobQueue, name: str, **kwargs) -> Admitter:
    github_store = GitHubStore(db)
    admission = Admission(github=app, permissions=PermissionChecker(app), queue=queue, store=db,
                          github_store=github_store)
    return Admitter(admission, DeliveryLog(github_store), name=name, **kwargs)


# --- claims in the store -------------------------------------------------------------------------


def test_claims_take_the_oldest_waiting_rows_once(store, clock):
    for delivery in ("a", "b", "c"):
        record(store, delivery)
        clock.advance(1)
    store.write_deliveries([DeliveryRecord(delivery_id="ping", event="ping", status="ignored")])
    first = store.claim_admissions("one:1", limit=2)
    assert [d.delivery_id for d in first] == ["a", "b"]
    assert {d.claimed_by for d in first} == {"one:1"} and {d.attempts for d in first} == {1}
    assert [d.delivery_id for d in store.claim_admissions("two:1", limit=10)] == ["c"]
    assert store.claim_admissions("three:1") == []  # everything is held; the ignored row never waits
    assert [d.delivery_id for d in store.pending_admissions()] == ["a", "b", "c"]  # still waiting, just held


def test_an_outcome_counts_only_while_its_claim_is_held(store, clock):
    record(store, "a")
    [held] = store.claim_admissions("one:1", lease_s=60)
    assert store.claim_admissions("two:1") == []
    clock.advance(60)  # the lease runs out: "one" is presumed dead
    [taken] = store.claim_admissions("two:1")
    assert taken.attempts == 2
    assert store.write_deliveries([DeliveryUpdate(delivery_id="a", status="denied", claim=held.claimed_by)]) == [False]
    assert store.write_deliveries([DeliveryUpdate(delivery_id="a", status="enqueued", claim="two:1")]) == [True]
    row = store.get_delivery("a")
    assert (row.status, row.job, row.claimed_by) == ("enqueued", None, None)


def test_concurrent_claimers_on_separate_connections_never_share_a_row(db_url, store):
    ids = [f"d{i:03}" for i in range(300)]
    store.write_deliveries([DeliveryRecord(delivery_id=i, event="issues", job=job_payload(i)) for i in ids])
    # each its own engine and connections, like another process
    claimers = {f"c{n}": GitHubStore(Store.open(db_url)) for n in range(4)}
    start = threading.Barrier(len(claimers))
    taken: dict[str, list[str]] = {name: [] for name in claimers}
    errors: list[BaseException] = []

    def claim(name: str) -> None:
        start.wait()
        try:
            while batch := claimers[name].claim_admissions(f"{name}:x", limit=7):
                taken[name] += [d.delivery_id for d in batch]
        except Exception as exc:  # noqa: BLE001  (the assertion below reports it)
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(name,)) for name in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for claimer in claimers.values():
        claimer.store.close()
    assert errors == []
    every = [d for got in taken.values() for d in got]
    assert sorted(every) == ids  # each row claimed, none twice
    assert sum(1 for got in taken.values() if got) >= 2  # they really did compete


def test_release_claims_frees_only_that_admitters_rows(store):
    record(store, "a", "b")
    store.claim_admissions("serve:local:1111", limit=1)
    store.claim_admissions("serve:other:2222", limit=1)
    assert store.release_claims("serve:local:") == 1
    assert [d.delivery_id for d in store.claim_admissions("worker:w:3")] == ["a"]


# --- the admitter --------------------------------------------------------------------------------


async def test_admitter_enqueues_each_delivery_and_writes_the_outcome(store, github, app):
    queue = RecordingQueue()
    admitter = make_admitter(store.store, app, queue, "serve:t", batch_size=4, concurrency=3)
    ids = [f"d{i}" for i in range(10)]
    record(store, *ids)
    await admitter.settle()
    assert sorted(queue.calls) == ids
    assert {store.get_delivery(i).status for i in ids} == {"enqueued"}
    assert store.pending_admissions() == []
    assert github.reaction_route.call_count == 10
    assert admitter.admitted == 10


async def test_a_crashed_admitters_claim_is_taken_over_once_its_lease_runs_out(store, github, app, clock):
    record(store, "orphan")
    store.claim_admissions("worker:dead:abc", lease_s=120)  # claimed, then the process died
    queue = RecordingQueue()
    admitter = make_admitter(store.store, app, queue, "worker:alive")
    clock.advance(119)
    await admitter.settle()
    assert queue.calls == []  # still leased to the dead admitter
    clock.advance(1)
    await admitter.settle()
    assert queue.calls == ["orphan"]
    delivery = store.get_delivery("orphan")
    assert (delivery.status, delivery.attempts, delivery.claimed_by) == ("enqueued", 2, None)


async def test_a_restarted_admitter_takes_back_its_own_claims_at_once(store, github, app):
    record(store, "left")
    store.claim_admissions("serve:local:before-crash", lease_s=3600)
    queue = RecordingQueue()
    admitter = make_admitter(store.store, app, queue, "serve:local")
    await admitter.start()  # releases "serve:local:*" and takes the first batch
    await admitter.stop()
    assert queue.calls == ["left"]
    assert store.get_delivery("left").status == "enqueued"


async def test_two_admitters_racing_enqueue_each_delivery_once(db_url, store, github, app):
    ids = [f"r{i:03}" for i in range(60)]
    record(store, *ids)
    queue = RecordingQueue()
    with Store.open(db_url) as other_db:
        first = make_admitter(store.store, app, queue, "worker:a", batch_size=5, concurrency=4)
        second = make_admitter(other_db, app, queue, "worker:b", batch_size=5, concurrency=4)
        await asyncio.gather(first.settle(), second.settle())
    assert sorted(queue.calls) == ids  # asked once each: claims, not the queue's dedup, kept them apart
    assert first.admitted > 0 and second.admitted > 0 and first.admitted + second.admitted == 60
    assert github.reaction_route.call_count == 60
    assert {store.get_delivery(i).status for i in ids} == {"enqueued"}


async def test_denied_permission_gets_one_reply_however_many_admitters(db_url, store, github, app):
    github.permission = "read"
    record(store, "denied")
    queue = RecordingQueue()
    with Store.open(db_url) as other_db:
        admitters = [make_admitter(db, app, queue, f"worker:{n}") for n, db in enumerate([store.store, other_db])]
        await asyncio.gather(*(a.settle() for a in admitters), *(a.settle() for a in admitters))
    assert queue.calls == []
    [(number, text)] = github.comments
    assert number == 1 and "write access" in text
    assert store.get_delivery("denied").status == "denied"


async def test_failed_admission_waits_for_its_backoff_then_succeeds(store, github, app, clock):
    ok = github.permission_route.side_effect
    down = True

    def permission(request: httpx.Request, **kwargs) -> httpx.Response:
        return httpx.Response(502, json={"message": "Bad Gateway"}) if down else ok(request, **kwargs)

    github.permission_route.side_effect = permission
    record(store, "flaky")
    queue = RecordingQueue()
    admitter = make_admitter(store.store, app, queue, "serve:t", retry_base_s=5)
    await admitter.settle()
    delivery = store.get_delivery("flaky")
    assert delivery.status == "failed" and delivery.job is not None and "502" in delivery.detail
    assert delivery.available_at is not None and delivery.claimed_by is None
    down = False
    clock.advance(4.9)
    await admitter.settle()
    assert queue.calls == []  # not before the backoff has passed
    clock.advance(0.1)
    await admitter.settle()
    assert queue.calls == ["flaky"]
    assert store.get_delivery("flaky").status == "enqueued"


async def test_a_stored_job_that_no_longer_reads_fails_once_and_is_not_retried(store, github, app):
    store.write_deliveries([DeliveryRecord(delivery_id="old", event="issues", job={"kind": "issue"})])
    admitter = make_admitter(store.store, app, RecordingQueue(), "serve:t")
    await admitter.settle()
    delivery = store.get_delivery("old")
    assert delivery.status == "failed" and delivery.job is None
    assert "cannot be read" in delivery.detail
    assert store.claim_admissions("serve:t:again") == []


async def test_while_the_receiver_is_busy_admissions_start_at_the_busy_rate(store, github, app, clock):
    queue = RecordingQueue()
    admitter = make_admitter(store.store, app, queue, "serve:t", receiver_busy=lambda: True, busy_rate=10,
                             clock=clock.monotonic, sleep=clock.sleep)
    record(store, "a", "b", "c")
    settling = asyncio.create_task(admitter.settle())
    # the admitter's tasks run (HTTP fakes, store threads): one starts, two wait their turn
    await wait_for(lambda: len(queue.calls) == 1 and clock.sleeping == 2, timeout=10, interval=0.005,
                   what="one admission running and two waiting")
    clock.advance(0.1)
    await wait_for(lambda: len(queue.calls) == 2 and clock.sleeping == 1, timeout=10, interval=0.005,
                   what="the second admission running")
    clock.advance(0.1)
    await asyncio.wait_for(settling, 10)
    assert sorted(queue.calls) == ["a", "b", "c"]


def test_admitter_settings_that_would_break_its_guarantees_are_refused(store):
    with pytest.raises(ValueError, match="shorter than its claim's lease"):
        Admitter(None, DeliveryLog(store), name="x", lease_s=10, timeout_s=10)
    with pytest.raises(ValueError, match="retry_base_s must be positive"):
        Admitter(None, DeliveryLog(store), name="x", retry_base_s=0)


# --- the receiver's part -------------------------------------------------------------------------


def test_serve_without_admission_records_and_acknowledges_only(tmp_path, github):
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'aura.db'}",
        github_app_id=APP_ID, github_private_key=private_key_pem(), github_webhook_secret=WEBHOOK_SECRET,
        trigger_label="bug", serve_admits=False,
    )
    queue = RecordingQueue()
    with make_client(settings, queue) as client:
        response = deliver(client, "issues", webhook_bytes("issues.labeled"), delivery="for-a-worker")
        runtime = client.app.state.runtime
        assert runtime.admitter is None
        delivery = runtime.github_store.get_delivery("for-a-worker")
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert delivery.status == "received" and delivery.job["delivery_id"] == "for-a-worker"
    assert queue.calls == [] and github.permission_route.call_count == 0 and github.reaction_route.call_count == 0
