"""Taking over the jobs of a process that died: a liveness lock per executor and a watchdog.

DBOS resumes a process's unfinished workflows only when a process with the same executor id starts
again. A worker killed for good (a lost machine, a container scaled down) would leave its jobs pending,
and their PR branches blocked, for ever. So:

- Every process that launches DBOS holds a lock named after its executor id for as long as it lives:
  on Postgres a session advisory lock on a connection of its own, on SQLite (one machine) an exclusive
  `flock` on a file beside the database. The operating system or the database server drops it the
  moment the process dies, SIGKILL included; there is no heartbeat to miss.
- A process cannot start while another holds its executor id: two live processes with one id would
  each resume the other's jobs, so `ExecutorIdInUse` is raised instead.
- Every process runs a `Watchdog`: every `poll_s` it lists the executors that have pending jobs, tries
  each one's lock, and for the executors whose lock it gets (their process is gone) returns their
  pending jobs to their queue with DBOS's recovery (`DBOS._recover_pending_workflows`, the call DBOS
  Conductor makes). It holds the dead executor's lock while it does so, so a restart of that executor
  waits until the handover is done. Any worker then dequeues the jobs and DBOS replays them from their
  last finished step; the per-branch partition holds, since a recovered job keeps its partition key.

A machine that vanishes without closing its connection is noticed by the Postgres server's TCP
keepalives, which the lock's session sets to about 25 s. A process that loses its own lock (the
database restarted, the network split) stops: its jobs may already have been handed to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from dbos import DBOS

log = logging.getLogger(__name__)

# the server notices a vanished client after idle + interval × count seconds
KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
ACQUIRE_WAIT_S = 15.0  # long enough for a watchdog that holds our lock to finish a handover


class ExecutorIdInUse(RuntimeError):
    pass


class ExecutorLocks:
    """Locks named by executor id. `hold(id)` takes this process's own for its lifetime; `probe(id)`
    takes another's for a moment and says whether it was free (its process is gone)."""

    def hold(self, executor: str, wait_s: float = ACQUIRE_WAIT_S) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def probe(self, executor: str) -> contextlib.AbstractContextManager[bool]:
        raise NotImplementedError

    def hold_first_free(self, candidates: list[str]) -> str:
        """Hold the first of `candidates` no live process holds; returns it (or `ExecutorIdInUse`)."""
        for executor in candidates:
            try:
                self.hold(executor, wait_s=0)
                return executor
            except ExecutorIdInUse:
                continue
        raise ExecutorIdInUse(f"all of {candidates[0]} … {candidates[-1]} are held by running processes")

    @staticmethod
    def for_url(url: str) -> ExecutorLocks:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                return ProcessLocks()
            return FileLocks(Path(parsed.database).with_name(Path(parsed.database).name + ".executors"))
        if parsed.get_backend_name() == "postgresql":
            return AdvisoryLocks(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
        raise ValueError(f"no executor locks for a {parsed.get_backend_name()} database")


def _key(executor: str) -> int:
    """A signed 64-bit advisory lock key for an executor id."""
    digest = hashlib.sha256(f"aura-sicd.executor\x1f{executor}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLocks(ExecutorLocks):
    def __init__(self, url: str) -> None:
        self.url = url
        self._own = None
        self._lock = threading.Lock()  # one thread at a time on the held connection
        self._probe = None
        self._probe_lock = threading.Lock()

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True, options=KEEPALIVES, keepalives=1, keepalives_idle=10,
                               keepalives_interval=5, keepalives_count=3, connect_timeout=10,
                               application_name="aura-sicd executor lock")

    def hold(self, executor: str, wait_s: float = ACQUIRE_WAIT_S) -> None:
        connection = self._connect()
        if not _retry_until(lambda: connection.execute("SELECT pg_try_advisory_lock(%s)", (_key(executor),)).fetchone()[0],
                            wait_s):
            connection.close()
            raise ExecutorIdInUse(executor)
        self._own = connection

    def release(self) -> None:
        if self._own is not None:
            with self._lock, contextlib.suppress(Exception):
                self._own.close()  # the session ends: its advisory locks go with it
            self._own = None
        with self._probe_lock:
            self._drop_probe()

    def healthy(self) -> bool:
        if self._own is None:
            return False
        with self._lock:
            try:
                self._own.execute("SELECT 1")
                return True
            except Exception:  # noqa: BLE001 (any failure of the session means the lock may be gone)
                return False

    @contextlib.contextmanager
    def probe(self, executor: str) -> Iterator[bool]:
        with self._probe_lock:  # one probing connection, kept: a sweep may try many executors
            if self._probe is None or self._probe.closed:
                self._probe = self._connect()
            connection = self._probe
            try:
                got = connection.execute("SELECT pg_try_advisory_lock(%s)", (_key(executor),)).fetchone()[0]
            except Exception:
                self._drop_probe()
                raise
            try:
                yield bool(got)
            finally:
                if got:
                    try:
                        connection.execute("SELECT pg_advisory_unlock(%s)", (_key(executor),))
                    except Exception:  # the session is gone, and its lock with it
                        self._drop_probe()
                        raise

    def _drop_probe(self) -> None:
        if self._probe is not None:
            with contextlib.suppress(Exception):
                self._probe.close()
            self._probe = None


class FileLocks(ExecutorLocks):
    """`flock` on `<database>.executors/<key>.lock`: the kernel drops it when the process dies."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._own: int | None = None

    def _open(self, executor: str) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        return os.open(self.directory / f"{_key(executor) & 0xFFFFFFFFFFFFFFFF:016x}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def hold(self, executor: str, wait_s: float = ACQUIRE_WAIT_S) -> None:
        fd = self._open(executor)
        if not _retry_until(lambda: _try_flock(fd), wait_s):
            os.close(fd)
            raise ExecutorIdInUse(executor)
        self._own = fd

    def release(self) -> None:
        if self._own is not None:
            os.close(self._own)
            self._own = None

    def healthy(self) -> bool:
        return self._own is not None

    @contextlib.contextmanager
    def probe(self, executor: str) -> Iterator[bool]:
        fd = self._open(executor)
        try:
            yield _try_flock(fd)
        finally:
            os.close(fd)  # closing drops the lock


class ProcessLocks(ExecutorLocks):
    """An in-memory database is one process's own: nobody else to take over from."""

    def hold(self, executor: str, wait_s: float = ACQUIRE_WAIT_S) -> None:
        pass

    def release(self) -> None:
        pass

    def healthy(self) -> bool:
        return True

    @contextlib.contextmanager
    def probe(self, executor: str) -> Iterator[bool]:
        yield False


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _retry_until(attempt: Callable[[], bool], wait_s: float) -> bool:
    import time

    deadline = time.monotonic() + wait_s
    while not attempt():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
    return True


class Watchdog:
    """Recovers the pending jobs of executors whose process is gone (see the module docstring)."""

    def __init__(self, locks: ExecutorLocks, executor: str, app_version: str, *, poll_s: float = 5.0,
                 on_lost_lock: Callable[[], None] | None = None) -> None:
        self.locks = locks
        self.executor = executor
        self.app_version = app_version
        self.poll_s = poll_s
        self.on_lost_lock = on_lost_lock or _terminate_self
        self.recovered = 0  # jobs handed back to their queue by this process
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="executor watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if not await asyncio.to_thread(self.locks.healthy):
                log.error("executor %s lost its liveness lock; stopping so its jobs are taken over cleanly",
                          self.executor)
                self.on_lost_lock()
                return
            try:
                await self.sweep()
            except Exception:  # the database is down: try again at the next poll
                log.exception("executor watchdog: cannot look for jobs of stopped executors")

    async def sweep(self) -> int:
        """One look: recover the pending jobs of every executor that is gone; returns how many."""
        pending = await DBOS.list_workflows_async(status="PENDING", app_version=self.app_version,
                                                  load_input=False, load_output=False)
        others = sorted({w.executor_id for w in pending if w.executor_id and w.executor_id != self.executor})
        recovered = 0
        for executor in others:
            recovered += await asyncio.to_thread(self._recover_if_gone, executor)
        self.recovered += recovered
        return recovered

    def _recover_if_gone(self, executor: str) -> int:
        with self.locks.probe(executor) as gone:
            if not gone:
                return 0
            handles = DBOS._recover_pending_workflows([executor])
        if handles:
            log.warning("executor %s is gone: %d of its jobs returned to the queue (%s)", executor, len(handles),
                        ", ".join(h.workflow_id for h in handles))
        return len(handles)


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
