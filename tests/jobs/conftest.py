"""A durable job queue for real: DBOS on SQLite in a temporary directory, git against a local bare
repository, the fast tier's sandbox (tests/fakes/sandbox.py), and GitHub and Ollama faked at the HTTP
level (respx)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import respx
from dbos import DBOS

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp
from bot.github.job_request import JobKind, JobRequest, ReplyTarget
from bot.github.mirror import RepoMirror
from bot.jobs import DBOSJobQueue, JobServices
from bot.store import Store
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, FakeGitHub, private_key_pem
from tests.fakes.ollama import FakeOllama
from tests.fakes.sandbox import HOST_SANDBOX, host_sandbox
from tests.repos import CALC_FILES, DISC, GEN, git, make_repo
from tests.wait import wait_for

REPO = "octo/calc"
INSTALLATION = 7

AGITATION = {"guidance": "add must use +", "focus_points": ["calc.py"], "improvement_plan": ["use a + b"]}


@dataclass
class JobsEnv:
    settings: Settings
    remote: Path  # the bare repository jobs clone from and push to
    github: FakeGitHub
    ollama: FakeOllama
    store: Store
    queue: DBOSJobQueue

    def remote_sha(self, branch: str) -> str | None:
        out = git(self.remote, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}").strip()
        return out or None

    def remote_file(self, ref: str, path: str) -> str:
        return git(self.remote, "show", f"{ref}:{path}")

    async def run(self, job: JobRequest, *, workflow_id: str | None = None, timeout: float = 60) -> dict:
        """Enqueue `job` and wait for its workflow's result."""
        assert await self.queue.enqueue(job)
        return await result_of(workflow_id or job.delivery_id, timeout=timeout)


async def result_of(workflow_id: str, *, timeout: float = 60) -> dict:
    await wait_for(lambda: DBOS.get_workflow_status_async(workflow_id), timeout=timeout, interval=0.1,
                   what=f"workflow {workflow_id} to start")
    handle = await DBOS.retrieve_workflow_async(workflow_id)
    return await asyncio.wait_for(handle.get_result(), timeout)


def make_remote(root: Path, files: dict[str, str] | None = None) -> Path:
    work = make_repo(root / "work", files or CALC_FILES)
    remote = root / "remote.git"
    git(root, "clone", "-q", "--bare", str(work), str(remote))
    return remote


def issue_job(remote: Path, delivery: str = "delivery-1", **update) -> JobRequest:
    job = JobRequest(
        kind=JobKind.ISSUE, delivery_id=delivery, event="issues.labeled", installation_id=INSTALLATION, repo=REPO,
        clone_url=str(remote), default_branch="main", number=12, title="add() returns the wrong result",
        body="add(2, 3) should be 5.", triggered_by="alice", label="aura-sicd",
        reply_to=[ReplyTarget(kind="issue", id=12)],
    )
    return job.model_copy(update=update)


@asynccontextmanager
async def running_jobs(tmp_path: Path, *, real_sandbox: bool = False, **settings: object) -> AsyncIterator[JobsEnv]:
    """DBOS running jobs against a bare remote of the calc repository, with `settings` over the defaults; on the
    in-process sandbox double unless `real_sandbox` (bubblewrap, for what only real isolation shows)."""
    defaults = dict(
        data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'aura.db'}", github_app_id=APP_ID,
        github_private_key=private_key_pem(), github_webhook_secret=WEBHOOK_SECRET, ollama_host="http://ollama.test",
        max_iterations=2, review_coalesce_s=0.5, public_url="https://bot.example.com",
    )
    if not real_sandbox:
        defaults["sandbox"] = HOST_SANDBOX
    config = Settings(_env_file=None, **{**defaults, **settings})
    remote = make_remote(tmp_path / "origin")
    with respx.mock(assert_all_called=False) as mock:
        github = FakeGitHub(mock)
        ollama = FakeOllama(mock).pull(GEN, DISC)
        store = Store.open(config.database_url)
        creds = AppCredentials(app_id=APP_ID, private_key=private_key_pem(), webhook_secret=WEBHOOK_SECRET)
        app = GitHubApp(creds, api_url=config.github_api_url, retry_backoff_s=0.01,
                        retry_budget_s=config.github_retry_budget_s)
        queue = DBOSJobQueue(config, run_jobs=True)
        services = JobServices(settings=config, store=store, github=lambda: app, mirror=RepoMirror(config.data_dir),
                               llm_factory=lambda s: ollama.llm(),
                               sandbox_opener=None if real_sandbox else host_sandbox)
        await queue.launch(services)
        try:
            yield JobsEnv(settings=config, remote=remote, github=github, ollama=ollama, store=store, queue=queue)
        finally:
            await queue.stop()
            await app.aclose()
            store.close()


@pytest.fixture
async def jobs_env(tmp_path: Path) -> AsyncIterator[JobsEnv]:
    async with running_jobs(tmp_path) as env:
        yield env
