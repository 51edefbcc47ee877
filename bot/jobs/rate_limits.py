"""GitHub's rate limits at the level of a job's durable steps, and what the job says it tried.

The client (bot/github/client.py) waits out a rate limit within the job's retry budget. A step it still
fails is retried by DBOS at fixed, growing pauses (`publish_attempts`, `publish_retry_interval_s`), which
know nothing of GitHub's reset time: a primary limit that resets in four seconds would be tried again
after a twentieth of a second and fail, and one that resets in an hour would be tried five times for
nothing. So a step's call goes through `RateLimitWaiter`: on a rate limit that resets within the time
the durable retries would cover anyway, it sleeps until the reset and calls again, inside the step;
one that resets later fails the step at once with `RateLimitPastBudget` (not retried), saying when it
resets. Each step's calls are counted, so the gave-up comment states what was actually tried.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from githubkit.exception import PrimaryRateLimitExceeded, RateLimitExceeded

log = logging.getLogger(__name__)

RESET_MARGIN_S = 1.0  # GitHub's reset is a whole second; ask again just after it


class RateLimitPastBudget(Exception):
    """A rate limit that resets later than the job keeps trying; not transient for the durable retry."""

    def __init__(self, resets_at: datetime, window_s: float, primary: bool) -> None:
        self.resets_at = resets_at
        kind = "API rate limit" if primary else "secondary rate limit"
        super().__init__(f"GitHub's {kind} for this installation resets at {resets_at:%H:%M:%S} UTC, later than "
                         f"this job keeps trying ({window_s / 60:.0f} minutes)")


def retry_window_s(attempts: int, interval_s: float, budget_s: float) -> float:
    """How long a publishing step keeps trying: the client's budget plus the durable retries' pauses."""
    pauses = sum(interval_s * 2**n for n in range(max(attempts - 1, 0)))
    return budget_s + pauses


class RateLimitWaiter:
    def __init__(self, window_s: float, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.window_s = window_s
        self.sleep = sleep
        self.calls: Counter[str] = Counter()  # step name → calls made in this process
        self.waited_s = 0.0
        self.last_reset: datetime | None = None

    async def call(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        while True:
            self.calls[name] += 1
            try:
                return await fn(*args)
            except RateLimitExceeded as exc:
                wait = max(exc.retry_after.total_seconds(), 0.0) + RESET_MARGIN_S
                self.last_reset = datetime.now(UTC) + timedelta(seconds=wait)
                primary = isinstance(exc, PrimaryRateLimitExceeded)
                if self.waited_s + wait > self.window_s:
                    raise RateLimitPastBudget(self.last_reset, self.window_s, primary) from exc
                log.warning("step %s: GitHub's rate limit resets in %.0f s; waiting for it", name, wait)
                self.waited_s += wait
                await self.sleep(wait)

    def tried(self, name: str, *, client_waited_s: float = 0.0) -> str:
        """What was tried for the step `name`, in a sentence."""
        calls = self.calls.get(name, 0)
        if not calls:
            return "That step ran once."
        text = f"That step was tried {calls} time(s)"
        waits = []
        if client_waited_s >= 0.5:
            waits.append(f"{client_waited_s:.0f} s in all waiting out GitHub's transient faults")
        if self.waited_s:
            waits.append(f"{self.waited_s:.0f} s for a rate limit to reset")
        return text + (f", with {' and '.join(waits)}" if waits else "") + "."
