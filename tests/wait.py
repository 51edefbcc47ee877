"""The one way a test waits: poll a condition until it holds, or fail naming what never happened.

`wait_until` for plain code (a server process starting, a port answering), `wait_for` inside the event
loop (a workflow starting, jobs running). Both return the seconds waited (the end-to-end tests report
them). The condition returns something truthy when done; it may raise to end the wait early
(`still_running`: a process that died). `details` adds what helps on a timeout (a log) to the failure.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx


def wait_until(condition: Callable[[], object], timeout: float, what: str, *, interval: float = 0.05,
               details: Callable[[], str] | None = None) -> float:
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(_timed_out(timeout, what, details))
        time.sleep(interval)


async def wait_for(condition: Callable[[], object | Awaitable[object]], timeout: float, what: str, *,
                   interval: float = 0.05, details: Callable[[], str] | None = None) -> float:
    started = time.monotonic()
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(_timed_out(timeout, what, details))
        await asyncio.sleep(interval)


def answers(url: str, *, status: int | None = 200) -> bool:
    """Whether something listening at `url` answers (with `status`, unless None)."""
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return status is None or response.status_code == status


def still_running(process: subprocess.Popen, name: str, details: Callable[[], str] | None = None) -> None:
    """Fail at once when `process` has exited (nothing will answer any more)."""
    if process.poll() is not None:
        more = f":\n{details()}" if details else ""
        raise AssertionError(f"{name} exited with {process.returncode}{more}")


def _timed_out(timeout: float, what: str, details: Callable[[], str] | None) -> str:
    return f"waited {timeout:g} s for {what}" + (f":\n{details()}" if details else "")
