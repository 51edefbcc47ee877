"""Jobs on pull requests: review bursts on our PR make one iteration on its branch with a reply per
thread; /improve on someone else's PR becomes a new PR into their branch, which is never pushed to."""

from __future__ import annotations

import asyncio

from bot.github.job_request import JobKind, JobRequest, ReplyTarget
from bot.records import GuidanceEntry
from bot.store.github import BotPullRequest, GitHubStore
from tests.jobs.conftest import INSTALLATION, REPO, JobsEnv, result_of
from tests.repos import GOOD_RUBRIC, calc_update, git
from tests.wait import wait_for

BOT_BRANCH = "aura-sicd/0123456789ab"


def commit_on_remote(env: JobsEnv, tmp_path, branch: str, text: str) -> str:
    """A commit on `branch` of the remote, made through a clone like anyone else would."""
    clone = tmp_path / f"clone-{branch.replace('/', '-')}"
    git(tmp_path, "clone", "-q", str(env.remote), str(clone))
    git(clone, "checkout", "-q", "-b", branch)
    calc = clone / "calc.py"
    calc.write_text(calc.read_text().replace("    return a - b", text))
    git(clone, "commit", "-qam", "work in progress")
    git(clone, "push", "-q", "origin", branch)
    return git(clone, "rev-parse", "HEAD").strip()


def review_job(env: JobsEnv, delivery: str, comment_id: int, text: str) -> JobRequest:
    return JobRequest(
        kind=JobKind.PR_ITERATE, delivery_id=delivery, event="pull_request_review_comment.created",
        installation_id=INSTALLATION, repo=REPO, clone_url=str(env.remote), number=101, base_ref="main",
        head_ref=BOT_BRANCH, head_sha="0" * 40, title="Aura SICD: add() returns the wrong result",
        body="## Description\n\nFix add.\n\n## Changes Summary\n\n- calc.py", triggered_by="carol",
        guidance=[GuidanceEntry(source="review", text=text, path="calc.py", line=3, author="carol")],
        reply_to=[ReplyTarget(kind="review_comment", id=comment_id)], coalesce_key=f"{REPO}#101:review",
    )


async def test_a_review_burst_makes_one_iteration_that_pushes_and_replies_in_each_thread(jobs_env: JobsEnv, tmp_path):
    env = jobs_env
    old_tip = commit_on_remote(env, tmp_path, BOT_BRANCH, "    return a - b  # wip")
    GitHubStore(env.store).upsert_bot_pr(BotPullRequest(repo=REPO, number=101, branch=BOT_BRANCH, run_id="first-run"))
    env.ollama.queue("generator", calc_update("    return a - b  # wip", "    return a + b")).queue("discriminator", GOOD_RUBRIC)

    assert await env.queue.enqueue(review_job(env, "rc-1", 501, "This subtracts; it must add."))
    assert await env.queue.enqueue(review_job(env, "rc-2", 502, "Drop the wip comment."))
    outcome = await result_of("rc-1:job")

    assert outcome["status"] == "updated"
    assert len(env.ollama.requests_for("generator")) == 1  # one iteration for the whole burst
    prompt = env.ollama.prompt(env.ollama.requests_for("generator")[0])
    assert "This subtracts; it must add." in prompt and "Drop the wip comment." in prompt
    new_tip = env.remote_sha(BOT_BRANCH)
    assert new_tip == outcome["pushed_sha"] != old_tip
    assert git(env.remote, "rev-parse", f"{new_tip}^").strip() == old_tip  # a new commit on top, no force
    assert "return a + b" in env.remote_file(BOT_BRANCH, "calc.py")
    replies = [(path, body) for method, path, body in env.github.requests if path.endswith("/replies")]
    assert [path for path, _ in replies] == [f"/repos/{REPO}/pulls/101/comments/501/replies",
                                            f"/repos/{REPO}/pulls/101/comments/502/replies"]
    assert all(body["body"].startswith(f"Pushed {new_tip[:12]}") for _, body in replies)
    checks = [body for method, path, body in env.github.requests if method == "POST" and path.endswith("/check-runs")]
    assert [c["head_sha"] for c in checks] == [new_tip]
    assert [b for m, p, b in env.github.requests if m == "POST" and p == f"/repos/{REPO}/pulls"] == []  # no new PR
    assert GitHubStore(env.store).get_bot_pr_by_number(REPO, 101).run_id == outcome["run_id"]


async def test_improve_on_someone_elses_pr_opens_a_pr_into_their_branch(jobs_env: JobsEnv, tmp_path):
    env = jobs_env
    their_tip = commit_on_remote(env, tmp_path, "feature", "    return a - b  # theirs")
    git(env.remote, "update-ref", "refs/pull/33/head", their_tip)  # GitHub keeps every PR's head here
    env.ollama.queue("generator", calc_update("    return a - b  # theirs", "    return a + b")).queue("discriminator", GOOD_RUBRIC)
    job = JobRequest(
        kind=JobKind.PR_FOREIGN, delivery_id="foreign-1", event="issue_comment.created", installation_id=INSTALLATION,
        repo=REPO, clone_url=str(env.remote), number=33, base_ref="main", head_ref="feature", head_sha=their_tip,
        title="Make add work", body="add is off", triggered_by="dave",
        guidance=[GuidanceEntry(source="human", text="keep it one line", author="dave")],
        reply_to=[ReplyTarget(kind="issue_comment", id=77)],
    )

    outcome = await env.run(job)

    assert outcome["status"] == "published"
    [pr] = [b for m, p, b in env.github.requests if m == "POST" and p == f"/repos/{REPO}/pulls"]
    assert pr["base"] == "feature" and pr["head"].startswith("aura-sicd/")
    assert "Improves #33" in pr["body"] and "Closes #" not in pr["body"]
    assert env.remote_sha("feature") == their_tip  # their branch is untouched
    assert git(env.remote, "rev-parse", f"{env.remote_sha(pr['head'])}^").strip() == their_tip
    assert "keep it one line" in env.ollama.prompt(env.ollama.requests_for("generator")[0])


async def test_jobs_on_one_branch_never_overlap(jobs_env: JobsEnv):
    """Two PR jobs of the same partition run one after the other (partition concurrency 1): while the
    first is held, the queue's second slot goes to the job of another partition, not to the second."""
    from dbos import DBOS, SetEnqueueOptions

    env = jobs_env
    started: list[str] = []
    release = asyncio.Event()

    @DBOS.workflow(name="tests.partition-probe")
    async def probe(name: str) -> None:
        started.append(name)
        await release.wait()

    queue = env.queue._jobs
    assert queue is not None and env.settings.queue_concurrency == 2
    handles = []
    for name, key in (("a", "octo/calc:aura-sicd/x"), ("b", "octo/calc:aura-sicd/x"), ("c", "octo/calc#9")):
        with SetEnqueueOptions(queue_partition_key=key):
            handles.append(await queue.enqueue_async(probe, name))
    await wait_for(lambda: len(started) >= 2, timeout=30, what="both slots taken")
    assert "c" in started  # one of a and b waits for the other, its partition's job
    release.set()
    await asyncio.gather(*(h.get_result() for h in handles))
    assert sorted(started) == ["a", "b", "c"] and started[-1] in ("a", "b")


async def test_one_installation_cannot_take_every_worker(jobs_env: JobsEnv):
    """Installation 7 files three issues, installation 8 one: with two slots and the default share (one
    less than the slots), the second slot goes to installation 8, not to a second job of installation 7."""
    from dbos import DBOS, SetEnqueueOptions

    from bot.jobs.fairness import queue_partition
    from tests.jobs.conftest import issue_job

    env = jobs_env
    started: list[str] = []
    release = asyncio.Event()

    @DBOS.workflow(name="tests.fairness-probe")
    async def probe(name: str) -> None:
        started.append(name)
        await release.wait()

    queue = env.queue._jobs
    handles = []
    jobs = [("a1", 7, 1), ("a2", 7, 2), ("a3", 7, 3), ("b1", 8, 4)]
    for name, installation, number in jobs:
        job = issue_job(env.remote, name, installation_id=installation, number=number)
        with SetEnqueueOptions(queue_partition_key=queue_partition(job, env.settings)):
            handles.append(await queue.enqueue_async(probe, name))
    deadline = asyncio.get_running_loop().time() + 30
    while len(started) < 2:
        assert asyncio.get_running_loop().time() < deadline, f"only {started} started"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)  # a third start would show now
    assert len(started) == 2 and "b1" in started, started
    release.set()
    await asyncio.gather(*(h.get_result() for h in handles))
    assert sorted(started) == ["a1", "a2", "a3", "b1"]
