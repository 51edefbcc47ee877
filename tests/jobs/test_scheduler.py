"""Scheduled scans with an injected clock: due times, once per due time, off switches, the open-PR cap,
and what the store says about findings that had a PR."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp
from bot.github.job_request import JobKind
from bot.github.repo_config import RepoConfig, RepoConfigInvalid, parse_repo_config
from bot.jobs.autonomy import choose_findings
from bot.jobs.memory_queue import InMemoryJobQueue
from bot.jobs.scheduler import AutonomyScheduler, GitHubRepoSource, ScheduledRepo, due_time
from bot.records import Episode, EpisodeStatus, Task
from bot.runs.scan_report import Finding
from bot.store import Store
from bot.store.github import BotPullRequest, GitHubStore
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, FakeGitHub, private_key_pem

MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
WEEKLY = "autonomy: {schedule: '0 3 * * 1', max_open_prs: 2}\n"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Source:
    """Repositories as the GitHub API would describe them; `broken` ones raise."""

    def __init__(self, configs: dict[str, str | None]) -> None:
        self.configs = configs
        self.broken: set[str] = set()

    async def describe(self, installation_id: int, repo: str) -> ScheduledRepo:
        if repo in self.broken:
            raise httpx.ConnectError("GitHub is unreachable")
        text = self.configs.get(repo)
        return ScheduledRepo(repo=repo, installation_id=installation_id, clone_url=f"https://github.com/{repo}.git",
                             default_branch="main", config=parse_repo_config(text) if text is not None else None)


@pytest.fixture
def store(store: Store) -> Store:
    GitHubStore(store).record_installation(7, account="octo", repositories=["octo/a", "octo/b", "octo/c"])
    return store


def scheduler(store: Store, source: Source, clock: Clock, **settings) -> tuple[AutonomyScheduler, InMemoryJobQueue]:
    values = {"enable_autonomy": True, "safe_mode": False, **settings}
    queue = InMemoryJobQueue()
    return AutonomyScheduler(Settings(_env_file=None, **values), GitHubStore(store), queue, source, clock=clock), queue


def test_due_time_is_the_last_firing_within_the_catch_up_window():
    assert due_time("0 3 * * 1", MONDAY_3AM) == MONDAY_3AM
    assert due_time("0 3 * * 1", MONDAY_3AM + timedelta(hours=5, minutes=59)) == MONDAY_3AM
    assert due_time("0 3 * * 1", MONDAY_3AM + timedelta(hours=6, minutes=1)) is None
    assert due_time("0 3 * * 1", MONDAY_3AM - timedelta(seconds=1)) is None  # Sunday night: last week's is too old
    assert due_time("*/15 * * * *", datetime(2026, 11, 29, 10, 7, tzinfo=UTC)) == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def test_the_autonomy_block_is_validated():
    config = parse_repo_config(WEEKLY)
    assert config.autonomy is not None and config.autonomy.max_open_prs == 2
    assert config.autonomy.label == "aura-sicd-autonomy"
    with pytest.raises(RepoConfigInvalid) as bad:
        parse_repo_config("autonomy: {schedule: 'every monday', max_open_prs: 0, often: true}")
    text = bad.value.text
    assert "autonomy.schedule: Value error, must be a cron expression of five fields" in text
    assert "autonomy.max_open_prs: Input should be greater than or equal to 1" in text
    assert "autonomy.often: unknown key (known keys: label, max_open_prs, schedule)" in text
    assert RepoConfig().autonomy is None


async def test_a_due_scan_is_enqueued_once_per_due_time(store):
    clock = Clock(MONDAY_3AM + timedelta(seconds=30))
    sched, queue = scheduler(store, Source({"octo/a": WEEKLY, "octo/b": "label: fix-me\n"}), clock)

    [job] = await sched.tick()
    assert job.kind is JobKind.SCAN and job.repo == "octo/a" and job.installation_id == 7
    assert job.delivery_id == "scan:octo/a@2026-11-30T03:00Z" and job.clone_url == "https://github.com/octo/a.git"
    assert not job.needs_permission and job.partition_key == "octo/a:scan"

    clock.now += timedelta(minutes=1)  # the next tick, and another process's tick: nothing new
    assert await sched.tick() == []
    clock.now = MONDAY_3AM + timedelta(days=1)
    assert await sched.tick() == []
    clock.now = MONDAY_3AM + timedelta(days=7, minutes=2)
    [next_week] = await sched.tick()
    assert next_week.delivery_id == "scan:octo/a@2026-12-07T03:00Z"
    assert [j.delivery_id for j in queue.released] == [job.delivery_id, next_week.delivery_id]


@pytest.mark.parametrize("settings", [{"enable_autonomy": False}, {"safe_mode": True}])
async def test_nothing_is_scheduled_unless_autonomy_is_on_and_safe_mode_off(store, settings):
    sched, queue = scheduler(store, Source({"octo/a": WEEKLY}), Clock(MONDAY_3AM), **settings)
    assert await sched.tick() == [] and queue.released == []


async def test_a_repository_at_its_open_pr_cap_is_not_scanned_and_one_failing_repository_stops_no_other(store):
    github = GitHubStore(store)
    for number in (1, 2):
        github.upsert_bot_pr(BotPullRequest(repo="octo/a", number=number, branch=f"aura-sicd/{number}", state="open"))
    source = Source({"octo/a": WEEKLY, "octo/b": WEEKLY, "octo/c": WEEKLY})
    source.broken.add("octo/b")
    sched, _ = scheduler(store, source, Clock(MONDAY_3AM))

    assert [j.repo for j in await sched.tick()] == ["octo/c"]
    github.set_bot_pr_state("octo/a", 1, "merged")
    assert [j.repo for j in await sched.tick()] == ["octo/a"]


def test_findings_with_an_open_pr_or_closed_by_a_maintainer_are_left_out(store):
    github = GitHubStore(store)
    keys = ["test:tests/test_a.py::test_x", "lint:src/a.py", "types:src/b.py", "check:build"]
    for number, (key, state) in enumerate(zip(keys[:3], ["open", "closed", "merged"], strict=True), start=1):
        run_id = f"run-{number}"
        store.create_run(run_id, kind="github", repo="octo/a")
        store.save_episode(Episode(run_id=run_id, episode_id=f"ep-{number}", status=EpisodeStatus.APPROVED,
                                   task=Task(title=key, source=f"scan:{key}", repo="octo/a")))
        github.upsert_bot_pr(BotPullRequest(repo="octo/a", number=number, branch=f"aura-sicd/{number}", run_id=run_id,
                                            state=state))
    github.upsert_bot_pr(BotPullRequest(repo="octo/a", number=9, branch="aura-sicd/issue", state="open"))  # not a scan's

    states = github.finding_pull_states("octo/a")
    assert states == {keys[0]: "open", keys[1]: "closed", keys[2]: "merged"}
    assert github.count_open_bot_prs("octo/a") == 2
    findings = [Finding(key=k, kind="check", check="c", title=k) for k in keys]
    # the merged one came back (a regression) and may be worked again; 3 allowed, 2 open: room for 1
    assert [f.key for f in choose_findings(findings, states, 2, 3)] == [keys[2]]
    assert [f.key for f in choose_findings(findings, states, 0, 5)] == [keys[2], keys[3]]
    assert choose_findings(findings, states, 4, 3) == []


async def test_the_github_source_reads_the_default_branch_config_and_caches_it():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeGitHub(mock)
        repo_route = mock.get(f"{fake.api}/repos/octo/a").mock(return_value=httpx.Response(
            200, json={"default_branch": "trunk", "clone_url": "https://github.com/octo/a.git"}))
        content = {"type": "file", "encoding": "base64", "content": base64.b64encode(WEEKLY.encode()).decode()}
        config_route = mock.get(f"{fake.api}/repos/octo/a/contents/.github/aura-sicd.yml").mock(
            return_value=httpx.Response(200, json=content))
        mock.get(f"{fake.api}/repos/octo/b").mock(return_value=httpx.Response(
            200, json={"default_branch": "main", "clone_url": "https://github.com/octo/b.git"}))
        mock.get(f"{fake.api}/repos/octo/b/contents/.github/aura-sicd.yml").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"}))
        creds = AppCredentials(app_id=APP_ID, private_key=private_key_pem(), webhook_secret=WEBHOOK_SECRET)
        app = GitHubApp(creds, api_url=fake.api, retry_backoff_s=0.01)
        ticks = [0.0]
        source = GitHubRepoSource(lambda: app, ttl_s=900, clock=lambda: ticks[0])
        try:
            a = await source.describe(7, "octo/a")
            assert a.default_branch == "trunk" and a.config is not None and a.config.autonomy.schedule == "0 3 * * 1"
            assert config_route.calls.last.request.url.params["ref"] == "trunk"
            ticks[0] = 899.0
            await source.describe(7, "octo/a")
            assert repo_route.call_count == 1
            ticks[0] = 901.0
            await source.describe(7, "octo/a")
            assert repo_route.call_count == 2
            assert (await source.describe(7, "octo/b")).config is None
        finally:
            await app.aclose()
