"""Whether the process that made a sandbox's leftovers is still alive, also across pid namespaces.

A pid names a process only inside its own pid namespace: a bot in a container, a CI run or another checkout
sharing the cache directory sees other processes' pids as dead (or as someone else's). A session directory
is therefore claimed with an exclusive `flock` held for its whole life; the kernel drops the lock when its
holder dies, in whatever namespace. Docker containers carry the pid namespace that made them instead.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

ALIVE_FILE = ".alive"
UNCLAIMED_GRACE_S = 120.0  # a directory not yet claimed (being made) or made by a version without claims


def claim(directory: Path) -> int:
    """Lock `directory` as in use until the returned descriptor is closed (or its process dies)."""
    fd = os.open(directory / ALIVE_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def claimed(directory: Path) -> bool | None:
    """True while a live process holds `directory`'s claim, False once none does, None if it has no claim."""
    try:
        fd = os.open(directory / ALIVE_FILE, os.O_RDWR | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock just taken
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(directory: Path, pid: int | None) -> bool:
    """Whether a session directory was left by a process that is gone: by its claim, or, without one, by the
    pid in its name once it is older than the grace period."""
    state = claimed(directory)
    if state is not None:
        return not state
    try:
        age = time.time() - directory.stat().st_mtime
    except FileNotFoundError:
        return False
    return pid is not None and age > UNCLAIMED_GRACE_S and not pid_alive(pid)


def pid_namespace() -> str:
    """This process's pid namespace (`pid:[4026531836]`), or "" where /proc does not say."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
