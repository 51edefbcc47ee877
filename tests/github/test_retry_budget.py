"""GitHub faults are waited out within a time budget, not a count of three (issue 10, item 3)."""

from __future__ import annotations

import time

import httpx
import pytest
from githubkit.exception import RequestFailed
from pydantic import SecretStr

from bot.github.client import AppCredentials, GitHubApp, RetryPolicy, is_transient
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, private_key_pem

PR = {"title": "t", "head": "aura-sicd/abc", "base": "main"}


def app(**kwargs) -> GitHubApp:
    creds = AppCredentials(app_id=APP_ID, private_key=SecretStr(private_key_pem()), webhook_secret=SecretStr(WEBHOOK_SECRET))
    return GitHubApp(creds, **{"retry_backoff_s": 0.01, **kwargs})


async def test_pr_creation_survives_502_502_429_and_a_dropped_connection(github):
    ok = github.create_pull_route.side_effect
    github.create_pull_route.side_effect = [
        httpx.Response(502), httpx.Response(502), httpx.Response(429, headers={"retry-after": "0"}),
        httpx.ConnectError("connection reset by peer"), httpx.Response(503), ok,
    ]
    gh = app().installation_client(1)
    response = await gh.rest.pulls.async_create("octo", "repo", data=PR)
    assert response.status_code == 201
    assert github.create_pull_route.call_count == 6


async def test_a_primary_rate_limit_is_waited_out_until_its_reset(github):
    ok = github.create_pull_route.side_effect
    reset = int(time.time()) + 1
    limited = httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                             json={"message": "API rate limit exceeded"})
    github.create_pull_route.side_effect = [limited, ok]
    gh = app().installation_client(1)
    await gh.rest.pulls.async_create("octo", "repo", data=PR)
    assert github.create_pull_route.call_count == 2 and time.time() >= reset - 1


async def test_past_the_budget_the_call_fails_and_the_failure_counts_as_transient(github):
    github.create_pull_route.side_effect = lambda request, **_: httpx.Response(502)
    gh = app(retry_budget_s=0.1, retry_backoff_s=0.02).installation_client(1)
    with pytest.raises(RequestFailed) as caught:
        await gh.rest.pulls.async_create("octo", "repo", data=PR)
    assert 3 <= github.create_pull_route.call_count < 10  # waits of 0.02, 0.04, then 0.08 would pass 0.1 s
    assert is_transient(caught.value)  # so the durable job retries the step later


async def test_a_validation_error_is_neither_retried_nor_transient(github):
    github.create_pull_route.side_effect = lambda request, **_: httpx.Response(422, json={"message": "Validation Failed"})
    gh = app().installation_client(1)
    with pytest.raises(RequestFailed) as caught:
        await gh.rest.pulls.async_create("octo", "repo", data=PR)
    assert github.create_pull_route.call_count == 1 and not is_transient(caught.value)


def test_the_backoff_doubles_up_to_its_cap_without_a_count_limit():
    policy = RetryPolicy(backoff_s=1, max_backoff_s=60, budget_s=10_000)
    request = httpx.Request("POST", "https://api.github.com/x")
    from githubkit.response import Response

    exc = RequestFailed(Response(httpx.Response(500, request=request), object))
    waits = [policy.wait_for(exc, n) for n in range(10)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(policy(exc, n).do_retry for n in range(20))  # 20 retries, still inside the budget
