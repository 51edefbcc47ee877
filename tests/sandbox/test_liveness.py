"""Leftover session directories are removed only once the process that made them is gone, also when that
process lives in another pid namespace (a bot in a container, a CI run beside a developer's checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import liveness
from tests.wait import wait_until

HOLDER = """
import sys, time
from pathlib import Path
from sandbox import liveness
liveness.claim(Path(sys.argv[1]))
print("claimed", flush=True)
time.sleep(600)
"""


def hold_in_new_pid_namespace(directory: Path) -> subprocess.Popen:
    """A process that claims `directory` from its own pid namespace, where it is pid 1 or 2."""
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", HOLDER, str(directory)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    return proc


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)")
def test_a_session_claimed_from_another_pid_namespace_is_kept_until_its_holder_dies(tmp_path: Path):
    session = tmp_path / "2-abcdef"  # pid 2 here is some other process, or none: the name says nothing
    session.mkdir()
    holder = hold_in_new_pid_namespace(session)
    try:
        assert liveness.claimed(session) is True
        assert not liveness.stale(session, 2)
    finally:
        holder.kill()
        holder.wait()
    wait_until(lambda: liveness.claimed(session) is False, 10, "the claim to go with its holder")
    assert liveness.stale(session, 2)


def test_this_process_claim_is_seen_and_released(tmp_path: Path):
    fd = liveness.claim(tmp_path)
    assert liveness.claimed(tmp_path) is True and not liveness.stale(tmp_path, os.getpid())
    liveness.release(fd)
    assert liveness.claimed(tmp_path) is False and liveness.stale(tmp_path, os.getpid())


def test_an_unclaimed_directory_is_judged_by_its_pid_after_a_grace_period(tmp_path: Path):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    assert liveness.claimed(tmp_path) is None
    assert not liveness.stale(tmp_path, exited.pid)  # young: perhaps being made right now
    old = time.time() - liveness.UNCLAIMED_GRACE_S - 10
    os.utime(tmp_path, (old, old))
    assert liveness.stale(tmp_path, exited.pid)
    assert not liveness.stale(tmp_path, os.getpid())
