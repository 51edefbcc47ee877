"""A clock that tests move by hand: what waits on it wakes when the test advances it, not in real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.elapsed = 0.0
        self.start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.elapsed

    def utcnow(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.elapsed + seconds, future))
        await future

    @property
    def sleeping(self) -> int:
        return sum(1 for _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        """Move time on; the sleeps now due wake at the loop's next turn (`await asyncio.sleep(0)`)."""
        self.elapsed += seconds
        due = [(at, future) for at, future in self._sleepers if at <= self.elapsed]
        self._sleepers = [(at, future) for at, future in self._sleepers if at > self.elapsed]
        for _, future in due:
            if not future.done():
                future.set_result(None)
