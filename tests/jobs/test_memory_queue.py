from __future__ import annotations

import asyncio

from bot.github.job_request import JobKind, JobRequest, ReplyTarget
from bot.jobs.memory_queue import InMemoryJobQueue
from bot.jobs.queue import JobQueue
from bot.records import GuidanceEntry
from tests.fakes.clock import ManualClock


def job(delivery: str, **kwargs) -> JobRequest:
    fields = dict(kind=JobKind.ISSUE, delivery_id=delivery, event="issues.labeled", repo="octo/calc",
                  clone_url="https://github.com/octo/calc.git", number=1, triggered_by="alice")
    return JobRequest(**(fields | kwargs))


def review_job(delivery: str, text: str, comment_id: int) -> JobRequest:
    return job(delivery, kind=JobKind.PR_ITERATE, number=5, head_ref="aura-sicd/abc", coalesce_key="octo/calc#5:review",
               guidance=[GuidanceEntry(source="review", text=text)],
               reply_to=[ReplyTarget(kind="review_comment", id=comment_id)])


def test_in_memory_queue_is_a_job_queue():
    assert isinstance(InMemoryJobQueue(), JobQueue)


async def test_same_delivery_is_enqueued_once():
    queue = InMemoryJobQueue()
    assert await queue.enqueue(job("d1"))
    assert not await queue.enqueue(job("d1"))
    assert [j.delivery_id for j in queue.released] == ["d1"]


async def test_burst_with_one_coalesce_key_becomes_one_job_after_the_window():
    clock = ManualClock()
    queue = InMemoryJobQueue(coalesce_window_s=5, sleep=clock.sleep)
    for i in range(3):
        assert await queue.enqueue(review_job(f"r{i}", f"comment {i}", 100 + i))
    assert not await queue.enqueue(review_job("r1", "again", 101))  # a redelivery inside the burst
    await asyncio.sleep(0)
    assert queue.released == [] and clock.sleeping == 1  # one window for the whole burst
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert queue.released == []  # 4.9 s into the window
    clock.advance(0.1)
    await asyncio.sleep(0)
    [merged] = queue.released
    assert merged.delivery_id == "r0" and merged.coalesced_deliveries == ["r1", "r2"]
    assert [g.text for g in merged.guidance] == ["comment 0", "comment 1", "comment 2"]
    assert [t.id for t in merged.reply_to] == [100, 101, 102]


async def test_jobs_of_one_branch_run_one_at_a_time():
    running: list[str] = []
    overlaps: list[tuple[str, str]] = []

    async def runner(j: JobRequest) -> None:
        for other in running:
            if other == j.partition_key:
                overlaps.append((other, j.delivery_id))
        running.append(j.partition_key)
        for _ in range(3):  # give other jobs turns to start meanwhile
            await asyncio.sleep(0)
        running.remove(j.partition_key)

    queue = InMemoryJobQueue(runner=runner, concurrency=4)
    for i in range(3):
        await queue.enqueue(job(f"same-{i}", kind=JobKind.PR_ITERATE, number=5, head_ref="aura-sicd/abc"))
        await queue.enqueue(job(f"other-{i}", number=10 + i))
    await queue.flush()
    assert overlaps == []
    assert len(queue.released) == 6


async def test_a_failing_job_does_not_stop_the_queue(caplog):
    done: list[str] = []

    async def runner(j: JobRequest) -> None:
        if j.delivery_id == "bad":
            raise RuntimeError("boom")
        done.append(j.delivery_id)

    queue = InMemoryJobQueue(runner=runner)
    await queue.enqueue(job("bad"))
    await queue.enqueue(job("good", number=2))
    await queue.flush()
    assert done == ["good"]
    assert "job bad" in caplog.text
