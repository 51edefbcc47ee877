"""Several `aura-sicd worker` processes on one PostgreSQL: they share the queue (each job once, one job at
a time per issue across workers), and a worker killed with SIGKILL mid-job is taken over by another,
still making exactly one pull request. The same on SQLite files shared by processes on one machine.

`aura-sicd serve` receives and admits (it runs no jobs); two workers with executor ids w1 and w2 and a
data directory each (as on two machines) run the jobs. Store and DBOS are fresh databases on the server
of AURA_TEST_POSTGRES_URL. GitHub and Ollama are the fake HTTP servers of tests/e2e/servers.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.github.job_request import JobKind, JobRequest
from bot.jobs.fairness import queue_partition
from tests.e2e.servers import free_port
from tests.e2e.test_serve_process import INSTALLATION, Fakes, labeled_delivery, post_delivery
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, private_key_pem
from tests.jobs.conftest import make_remote
from tests.postgres import fresh_database
from tests.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.bwrap, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_POLL_S = 1.0


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    with f.github_server, f.ollama_server:
        yield f
    f.release.set()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    with fresh_database("aura_store") as store, fresh_database("aura_dbos") as dbos:
        yield store, dbos


@pytest.fixture(params=["postgres", "sqlite"])
def shared_databases(request, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Store and DBOS on PostgreSQL, or on SQLite files every process on this machine opens."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aura.db'}", f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    else:
        yield request.getfixturevalue("databases")


class Cluster:
    """serve (admits, runs no job) and named workers, all on the same two Postgres databases."""

    def __init__(self, tmp_path: Path, fakes: Fakes, store_url: str, dbos_url: str) -> None:
        self.tmp_path = tmp_path
        self.fakes = fakes
        self.dbos_url = dbos_url
        # one installation here: its share of the workers is all of them (bot/jobs/fairness.py)
        self.env = {"AURA_STORE_URL": store_url, "AURA_DBOS_URL": dbos_url, "AURA_TAKEOVER_POLL_S": str(TAKEOVER_POLL_S),
                    "AURA_INSTALLATION_CONCURRENCY": "64"}
        self.workers: dict[str, subprocess.Popen] = {}
        self.serve: subprocess.Popen | None = None

    def _start(self, name: str, args: list[str], log_level: str = "warning", **env: str) -> subprocess.Popen:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "OLLAMA_", "DBOS"))},
            **self.env,
            "AURA_DATA_DIR": str(self.tmp_path / name),  # a machine of its own: its own mirrors
            "AURA_GITHUB_APP_ID": str(APP_ID),
            "AURA_GITHUB_PRIVATE_KEY": private_key_pem(),
            "AURA_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "AURA_GITHUB_API_URL": self.fakes.github.api,
            "AURA_GITHUB_GIT_URL": str(self.tmp_path / "git"),  # git goes to <this>/octo/calc.git (see test_serve_process)
            "OLLAMA_HOST": self.fakes.ollama.host,
            "AURA_SANDBOX_BACKEND": "bwrap",
            "AURA_MAX_ITERATIONS": "1",
            "AURA_PUBLIC_URL": "https://bot.example.com",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        log = open(self.tmp_path / f"{name}.log", "a")  # noqa: SIM115 (handed to the child)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", *args, "--log-level", log_level],
                                   cwd=self.tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        return process

    def start_serve(self, port: int) -> None:
        self.serve = self._start("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)],
                                 AURA_SERVE_RUNS_JOBS="false", AURA_DBOS_EXECUTOR_ID="serve")

        def healthy() -> bool:
            assert self.serve is not None and self.serve.poll() is None, "aura-sicd serve exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 30, "aura-sicd serve to answer /healthz")

    def start_worker(self, name: str, *, named: bool = True) -> subprocess.Popen:
        """A worker; `named=False` leaves its executor id to the worker (the first free worker-<host>-N)."""
        process = self._start(name, ["worker", *(["--executor-id", name] if named else []), "--no-admit",
                                     "--concurrency", "1"], log_level="info")
        self.workers[name] = process
        return process

    def wait_ready(self, *names: str) -> None:
        """Until each worker has launched its queue (so the first jobs do not all go to the fastest)."""
        for name in names:
            log = self.tmp_path / f"{name}.log"
            wait_until(lambda log=log: " ready: " in log.read_text(), 60, f"worker {name} to be ready")

    def workflows(self) -> list[dict]:
        query = ("SELECT workflow_uuid, status, executor_id, queue_partition_key, started_at_epoch_ms, completed_at "
                 "FROM {table} WHERE name = 'aura-sicd.job' ORDER BY created_at")
        url = make_url(self.dbos_url)
        if url.get_backend_name() == "sqlite":
            if not Path(url.database).exists():
                return []
            with contextlib.closing(sqlite3.connect(url.database, timeout=30)) as connection:
                rows = connection.execute(query.format(table="workflow_status")).fetchall()
        else:
            with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as connection:
                rows = connection.execute(query.format(table="dbos.workflow_status")).fetchall()
        keys = ("id", "status", "executor", "partition", "started", "completed")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def stop(self) -> None:
        for process in [*self.workers.values(), self.serve]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers.values(), self.serve]:
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def issue(remote: Path, number: int) -> bytes:
    payload = json.loads(labeled_delivery(remote))
    payload["issue"].update(number=number, title=f"add() is wrong ({number})", body="add(2, 3) should be 5.")
    return json.dumps(payload).encode()


def pulls_closing(fakes: Fakes, number: int) -> list[dict]:
    return [p for p in fakes.pulls_created() if f"Closes #{number}" in p["body"]]


def test_two_workers_share_the_queue_and_take_over_a_killed_workers_job(tmp_path: Path, fakes: Fakes,
                                                                       shared_databases):
    store_url, dbos_url = shared_databases
    remote = make_remote(tmp_path / "origin")
    (tmp_path / "git" / "octo").mkdir(parents=True)
    (tmp_path / "git" / "octo" / "calc.git").symlink_to(remote)
    cluster = Cluster(tmp_path, fakes, store_url, dbos_url)
    try:
        port = free_port()
        cluster.start_serve(port)
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        cluster.wait_ready("w1", "w2")

        # 1. four jobs: three issues, and issue 21 labeled twice (two jobs in one partition)
        for number in (21, 22, 23, 21):
            response = post_delivery(port, issue(remote, number), str(uuid.uuid4()))
            assert response.status_code == 202, response.text
        wait_until(lambda: sum(w["status"] == "SUCCESS" for w in cluster.workflows()) == 4, 120, "four jobs done")
        jobs = cluster.workflows()
        assert len(jobs) == 4 and {w["status"] for w in jobs} == {"SUCCESS"}
        assert {w["executor"] for w in jobs} == {"w1", "w2"}  # both workers took jobs
        assert len(fakes.pulls_created()) == 4 and len(pulls_closing(fakes, 21)) == 2  # each job once
        [shared] = [p for p in {w["partition"] for w in jobs} if sum(w["partition"] == p for w in jobs) == 2]
        issue_21 = JobRequest(kind=JobKind.ISSUE, delivery_id="-", event="issues.labeled", installation_id=INSTALLATION,
                              repo="octo/calc", clone_url="-", number=21, triggered_by="-")
        assert shared == queue_partition(issue_21, Settings(_env_file=None, installation_concurrency=64))
        first, second = sorted((w for w in jobs if w["partition"] == shared), key=lambda w: w["started"])
        assert second["started"] >= first["completed"], "two jobs of one issue ran at the same time"

        # 2. a job is killed mid-scoring with its worker; the other worker takes it over
        fakes.hold_scoring.set()
        generated_before = len(fakes.ollama.requests_for("generator"))
        assert post_delivery(port, issue(remote, 31), str(uuid.uuid4())).status_code == 202
        wait_until(fakes.scoring_started.is_set, 60, "the job to reach scoring")
        [job] = [w for w in cluster.workflows() if w["status"] == "PENDING"]
        victim = job["executor"]
        survivor = "w2" if victim == "w1" else "w1"
        os.kill(cluster.workers[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        cluster.workers[victim].wait(timeout=10)
        fakes.hold_scoring.clear()
        fakes.release.set()

        def taken_over() -> bool:
            return any(w["id"] == job["id"] and w["executor"] == survivor for w in cluster.workflows())

        takeover_s = wait_until(taken_over, 30, f"{survivor} to take over the job of {victim}")
        wait_until(lambda: len(pulls_closing(fakes, 31)) == 1, 60, "the taken-over job's pull request")
        to_pr_s = time.monotonic() - killed
        time.sleep(2 * TAKEOVER_POLL_S + 1)  # anything doubled would show up now

        assert len(pulls_closing(fakes, 31)) == 1
        assert [w["status"] for w in cluster.workflows() if w["id"] == job["id"]] == ["SUCCESS"]
        # resumed at the step that was cut short: the generator's answer was not asked for again
        assert len(fakes.ollama.requests_for("generator")) == generated_before + 1
        assert len([b for n, b in fakes.github.comments if n == 31 and "opened a pull request" in b]) == 1
        logs = "".join((tmp_path / f"{name}.log").read_text() for name in (survivor, "serve"))
        assert logs.count(f"executor {victim} is gone: 1 of its jobs returned to the queue") == 1  # by either one
        print(f"takeover: {takeover_s:.1f} s from SIGKILL to {survivor} running the job, {to_pr_s:.1f} s to its PR")
    finally:
        fakes.release.set()
        cluster.stop()


def test_executor_ids_are_unique_among_live_workers(tmp_path: Path, fakes: Fakes, databases):
    store_url, dbos_url = databases
    cluster = Cluster(tmp_path, fakes, store_url, dbos_url)
    try:
        first = cluster.start_worker("w1")
        wait_until(lambda: _locks_held(dbos_url) == 1, 30, "w1 to hold its executor lock")
        second = cluster.start_worker("w1")
        assert second.wait(timeout=60) == 2  # after waiting ACQUIRE_WAIT_S for the id
        assert "the executor id 'w1' is held by another running process" in (tmp_path / "w1.log").read_text()
        assert first.poll() is None
        # unnamed workers take worker-<host>-1, -2, …: each a name of its own
        cluster.start_worker("a", named=False)
        cluster.start_worker("b", named=False)
        wait_until(lambda: _locks_held(dbos_url) == 3, 30, "two unnamed workers holding locks of their own")
        assert all(p.poll() is None for name, p in cluster.workers.items() if name != "w1") and first.poll() is None
    finally:
        cluster.stop()


def _locks_held(dbos_url: str) -> int:
    """Executor locks held on the DBOS database."""
    url = make_url(dbos_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND a.application_name = 'aura-sicd executor lock' AND a.datname = current_database()"
        ).fetchone()[0]

