"""Executor liveness locks (bot/jobs/takeover.py) across real processes, on SQLite and Postgres."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.jobs.takeover import ExecutorIdInUse, ExecutorLocks
from tests.postgres import fresh_database
from tests.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from bot.jobs.takeover import ExecutorLocks
locks = ExecutorLocks.for_url(sys.argv[1])  # kept: the lock lives as long as the object
locks.hold(sys.argv[2], wait_s=0)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dbos_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    else:
        with fresh_database("aura_lock") as url:
            yield url


def hold_in_process(url: str, executor: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, url, executor], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def gone(locks: ExecutorLocks, executor: str) -> bool:
    with locks.probe(executor) as free:
        return free


def test_a_live_process_keeps_its_executor_id_and_sigkill_frees_it(dbos_url: str):
    locks = ExecutorLocks.for_url(dbos_url)
    child = hold_in_process(dbos_url, "worker-a")
    try:
        assert not gone(locks, "worker-a")
        assert gone(locks, "worker-b")  # nobody ever held it
        with pytest.raises(ExecutorIdInUse):
            locks.hold("worker-a", wait_s=0.5)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    # the server ends the session as soon as it reads EOF
    wait_until(lambda: gone(locks, "worker-a"), 5, "the lock of a killed process to be released")
    locks.hold("worker-a", wait_s=0)  # a restart under the same id starts
    try:
        assert locks.healthy()
        child = subprocess.run([sys.executable, "-c", HOLDER, dbos_url, "worker-a"], check=False, capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30)
        assert child.returncode != 0 and "ExecutorIdInUse" in child.stderr
    finally:
        locks.release()
    assert gone(locks, "worker-a")


@pytest.mark.postgres
async def test_a_process_that_loses_its_lock_is_told_to_stop(tmp_path: Path):
    """The database ended the lock's session (a restart, a split): the watchdog calls `on_lost_lock`."""
    import asyncio

    import psycopg

    from bot.jobs.takeover import AdvisoryLocks, Watchdog

    with fresh_database("aura_lock") as url:
        locks = ExecutorLocks.for_url(url)
        assert isinstance(locks, AdvisoryLocks)
        locks.hold("worker-a", wait_s=0)
        lost = asyncio.Event()
        watchdog = Watchdog(locks, "worker-a", "v1", poll_s=0.1, on_lost_lock=lost.set)
        watchdog.start()
        try:
            await asyncio.sleep(0.3)
            assert not lost.is_set()  # healthy while the session lives
            with psycopg.connect(locks.url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (locks._own.info.backend_pid,))
            await asyncio.wait_for(lost.wait(), 5)
            assert gone(ExecutorLocks.for_url(url), "worker-a")  # free for whoever takes over
        finally:
            await watchdog.stop()
            locks.release()
