"""Publishing never loses a job (issue 10, item 3): GitHub and git faults are waited out; a job that
still cannot publish is retried by the durable queue, then says on the issue what was done and what
failed, and its progress comment never claims success without a pull request.

DBOS on SQLite, git against a local bare repository, the fast tier's sandbox, GitHub and Ollama faked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

import bot.jobs.git as jobgit
from bot.config import Settings
from bot.github.mirror import RepoMirror
from bot.jobs import JobServices
from bot.workspace import GitError, run_git
from tests.jobs.conftest import JobsEnv, issue_job, running_jobs
from tests.repos import GOOD_RUBRIC, RIGHT_FIX


@asynccontextmanager
async def jobs(tmp_path: Path, *, budget_s: float, attempts: int) -> AsyncIterator[JobsEnv]:
    async with running_jobs(tmp_path, max_iterations=1, review_coalesce_s=5.0, github_retry_budget_s=budget_s,
                            publish_attempts=attempts, publish_retry_interval_s=0.05) as env:
        env.ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
        yield env


def progress_edits(env: JobsEnv) -> list[str]:
    return [body["body"] for method, path, body in env.github.requests if method == "PATCH" and "/issues/comments/" in path]


async def test_pr_creation_after_502_502_429_and_a_push_failing_once_still_publishes(tmp_path, monkeypatch):
    pushes: list[list[str]] = []

    def flaky_push(args, cwd, **kwargs):
        if args[0] == "push":
            pushes.append(args)
            if len(pushes) == 1:
                raise GitError(args, 128, "error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500")
        return run_git(args, cwd, **kwargs)

    monkeypatch.setattr(jobgit, "run_git", flaky_push)
    async with jobs(tmp_path, budget_s=60, attempts=3) as env:
        ok = env.github.create_pull_route.side_effect
        env.github.create_pull_route.side_effect = [
            httpx.Response(502), httpx.Response(502), httpx.Response(429, headers={"retry-after": "0"}), ok]

        outcome = await env.run(issue_job(env.remote))

        assert outcome["status"] == "published", outcome
        [pr] = env.github.pulls.values()
        assert len(pushes) == 2 and env.remote_sha(pr["head"]["ref"]) == outcome["pushed_sha"]
        assert env.github.create_pull_route.call_count == 4
        assert "done: published" in progress_edits(env)[-1]


async def test_a_job_that_cannot_open_its_pr_retries_then_says_so_and_never_claims_success(tmp_path):
    async with jobs(tmp_path, budget_s=0.2, attempts=3) as env:
        env.github.create_pull_route.side_effect = lambda request, **_: httpx.Response(502, json={"message": "Bad Gateway"})

        outcome = await env.run(issue_job(env.remote, "delivery-gives-up"))

        assert outcome["status"] == "publish_failed" and "open-pr" in outcome["detail"]
        # waited out within the budget, then two more durable attempts of the step
        assert env.github.create_pull_route.call_count >= 3 * 3
        [text] = [body for number, body in env.github.comments if number == 12 and "gave up" in body]
        assert "opening the pull request" in text and "HTTP 502" in text
        [branch] = [line.split("`")[1] for line in text.splitlines() if "pushed the change" in line]
        assert branch.startswith("aura-sicd/") and env.remote_sha(branch)  # the branch is there, and named
        edits = progress_edits(env)
        assert "failed while opening the pull request" in edits[-1]
        assert not any("done: published" in e for e in edits)


def test_a_job_recorded_with_another_hosts_url_goes_to_the_configured_host(tmp_path):
    from bot.jobs.workflow import JobRun

    settings = Settings(_env_file=None, data_dir=tmp_path)
    services = JobServices(settings=settings, store=None, github=lambda: None, mirror=RepoMirror(tmp_path))  # type: ignore[arg-type]
    for recorded, used in [
        ("https://evil.example/steal.git", "https://github.com/octo/calc.git"),
        ("git@evil.example:steal.git", "https://github.com/octo/calc.git"),
        ("https://github.com/octo/calc.git", "https://github.com/octo/calc.git"),
        ("/srv/git/calc.git", "/srv/git/calc.git"),  # a local remote takes no token
    ]:
        job = issue_job(Path("/unused")).model_copy(update={"clone_url": recorded})
        assert JobRun(services, job, "wf").clone_url() == used


def rate_limited_for(env: JobsEnv, seconds: float) -> list[float]:
    """create-pull answers GitHub's primary rate limit (403, remaining 0, the reset time) for `seconds` from
    its first call; returns [the reset] once called."""
    import time

    ok = env.github.create_pull_route.side_effect
    resets: list[float] = []

    def respond(request, **kwargs):
        if not resets:
            resets.append(int(time.time()) + seconds)
        reset = resets[0]
        if time.time() < reset:
            env.github._record(request)
            return httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(reset))},
                                  json={"message": "API rate limit exceeded for installation ID 7."})
        return ok(request, **kwargs)

    env.github.create_pull_route.side_effect = respond
    return resets


async def test_a_primary_rate_limit_past_the_clients_budget_is_still_waited_out_until_its_reset(tmp_path):
    """Past the client's budget (0.5 s here) the durable retries used to fire at their own pace (2 s, then
    4 s), asking GitHub again before the reset (3 s away). Now the step waits for the reset and asks once
    more, within the time its retries cover anyway."""
    import time

    async with jobs(tmp_path, budget_s=0.5, attempts=5) as env:
        env.settings.publish_retry_interval_s = 2.0  # the durable retries cover 0.5 + 2 + 4 + 8 + 16 s
        resets = rate_limited_for(env, 3)

        outcome = await env.run(issue_job(env.remote, "rate-1"))

        assert outcome["status"] == "published", outcome
        assert time.time() >= resets[0]
        assert env.github.create_pull_route.call_count == 2  # limited, then after the reset


async def test_a_rate_limit_resetting_after_the_job_gives_up_at_once_and_says_so(tmp_path):
    async with jobs(tmp_path, budget_s=0.5, attempts=3) as env:
        rate_limited_for(env, 3600)

        outcome = await env.run(issue_job(env.remote, "rate-2"))

        assert outcome["status"] == "publish_failed"
        [text] = [body for number, body in env.github.comments if number == 12 and "gave up" in body]
        assert "API rate limit for this installation resets at" in text and "later than this job keeps trying" in text
        assert "That step was tried 1 time(s)" in text and "up to 3 time" not in text
        assert env.github.create_pull_route.call_count == 1  # no pointless durable retries


async def test_a_refused_pull_request_says_it_was_tried_once(tmp_path):
    async with jobs(tmp_path, budget_s=0.5, attempts=5) as env:
        env.github.create_pull_route.side_effect = lambda request, **_: httpx.Response(
            422, json={"message": "Validation Failed"})

        outcome = await env.run(issue_job(env.remote, "refused-1"))

        assert outcome["status"] == "publish_failed"
        [text] = [body for number, body in env.github.comments if number == 12 and "gave up" in body]
        assert "HTTP 422" in text and "That step was tried 1 time(s)." in text and "up to 5" not in text
