"""Group commit for delivery rows: writes that arrive while one transaction runs share the next one.

Every acknowledged delivery is one row written before the answer (that row is what makes a redelivery a
no-op) and one update after admission (by the admitter, in this process or a worker's). One SQLite transaction per row caps a busy receiver at a few
hundred deliveries a second; batching whatever is waiting into one transaction lifts that cap while
each caller still gets its own answer (new or duplicate) only after its row is committed. When a batch
fails, its rows are written again one by one, so a row the database refuses fails only its own caller.
"""

from __future__ import annotations

import asyncio

from bot.store.github import DeliveryRecord, DeliveryUpdate, GitHubStore


class DeliveryLog:
    def __init__(self, store: GitHubStore, *, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._waiting: list[tuple[DeliveryRecord | DeliveryUpdate, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, record: DeliveryRecord) -> bool:
        """True when the delivery is new, False for a redelivery; returns once the row is committed."""
        return await self._submit(record)

    async def update(self, update: DeliveryUpdate) -> bool:
        """True once applied; False when the row is gone or no longer held by `update.claim`."""
        return await self._submit(update)

    async def _submit(self, op: DeliveryRecord | DeliveryUpdate) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((op, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            try:
                results = await asyncio.to_thread(self.store.write_deliveries, [op for op, _ in batch])
            except Exception as exc:  # noqa: BLE001  (every caller of the failed batch hears about it)
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                else:
                    for op, future in batch:
                        await self._write_one(op, future)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, bool(result))

    async def _write_one(self, op: DeliveryRecord | DeliveryUpdate, future: asyncio.Future[bool]) -> None:
        try:
            [result] = await asyncio.to_thread(self.store.write_deliveries, [op])
        except Exception as exc:  # noqa: BLE001
            _settle(future, exc)
        else:
            _settle(future, bool(result))


def _settle(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
