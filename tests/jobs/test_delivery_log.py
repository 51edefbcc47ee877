from __future__ import annotations

import asyncio

from bot.jobs.delivery_log import DeliveryLog
from bot.store import Store
from bot.store.github import DeliveryRecord, DeliveryUpdate, GitHubStore


async def test_concurrent_writes_share_transactions_and_duplicates_are_exact(tmp_path, monkeypatch):
    with Store.open(f"sqlite:///{tmp_path / 'aura.db'}") as store:
        github_store = GitHubStore(store)
        batches: list[int] = []
        real = github_store.write_deliveries

        def counting(ops):
            batches.append(len(ops))
            return real(ops)

        monkeypatch.setattr(github_store, "write_deliveries", counting)
        log = DeliveryLog(github_store)
        ids = [f"d{i % 150}" for i in range(200)]  # 50 duplicates, some inside the same batch
        results = await asyncio.gather(*(log.record(DeliveryRecord(delivery_id=d, event="issues")) for d in ids))
        assert sum(results) == 150
        assert [d for d, new in zip(ids, results, strict=True) if new] == [f"d{i}" for i in range(150)]
        assert len(batches) < 20 and sum(batches) == 200  # far fewer transactions than rows
        await log.update(DeliveryUpdate(delivery_id="d3", status="enqueued"))
        assert github_store.get_delivery("d3").status == "enqueued"


async def test_a_failed_batch_fails_its_callers(tmp_path, monkeypatch):
    with Store.open(f"sqlite:///{tmp_path / 'aura.db'}") as store:
        github_store = GitHubStore(store)

        def broken(ops):
            raise OSError("disk full")

        monkeypatch.setattr(github_store, "write_deliveries", broken)
        log = DeliveryLog(github_store)
        try:
            await log.record(DeliveryRecord(delivery_id="x", event="issues"))
        except OSError as exc:
            assert "disk full" in str(exc)
        else:
            raise AssertionError("the failure must reach the caller")


async def test_a_row_the_database_refuses_fails_only_its_own_caller(tmp_path, monkeypatch):
    with Store.open(f"sqlite:///{tmp_path / 'aura.db'}") as store:
        github_store = GitHubStore(store)
        batches: list[int] = []
        real = github_store.write_deliveries
        monkeypatch.setattr(github_store, "write_deliveries", lambda ops: batches.append(len(ops)) or real(ops))
        log = DeliveryLog(github_store)
        good = [DeliveryRecord(delivery_id=f"ok-{n}", event="issues") for n in range(5)]
        bad = DeliveryRecord(delivery_id="overflow", event="issues", installation_id=2**70)  # past SQLite's INTEGER
        results = await asyncio.gather(*(log.record(r) for r in [*good[:2], bad, *good[2:]]), return_exceptions=True)
        assert results[:2] + results[3:] == [True] * 5
        assert isinstance(results[2], Exception)
        assert GitHubStore(store).get_delivery("overflow") is None
        assert all(GitHubStore(store).get_delivery(r.delivery_id) is not None for r in good)
        assert batches == [6, 1, 1, 1, 1, 1, 1]  # one batch, refused, then row by row
