"""App auth, installation tokens, retries, credentials — against a fake GitHub at the HTTP level."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from githubkit.exception import RequestFailed
from githubkit.response import Response
from pydantic import SecretStr

from bot.config import Settings
from bot.github.client import (
    AppCredentials,
    GitHubApp,
    GitHubAppNotConfigured,
    RetryPolicy,
    load_credentials,
    save_credentials,
)
from tests.fakes.github import APP_ID, TOKEN, WEBHOOK_SECRET, FakeGitHub, private_key_pem

REPO = "octo/repo"


@pytest.fixture
def credentials() -> AppCredentials:
    return AppCredentials(app_id=APP_ID, private_key=SecretStr(private_key_pem()), webhook_secret=SecretStr(WEBHOOK_SECRET))


async def test_installation_token_is_requested_once_and_shared_with_git(credentials, github):
    app = GitHubApp(credentials)
    gh = app.installation_client(5)
    await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice")
    other = app.installation_client(5)  # a new client for the same installation shares the cached token
    await other.rest.repos.async_get_collaborator_permission_level("octo", "repo", "bob")
    assert await app.installation_token(5) == TOKEN
    assert github.token_route.call_count == 1
    token_request = github.token_route.calls[0].request
    assert token_request.headers["authorization"].startswith("Bearer ")  # the App's JWT
    permission_request = github.permission_route.calls[0].request
    assert permission_request.headers["authorization"] == f"token {TOKEN}"


async def test_git_token_first_then_rest_reuses_it(credentials, github):
    app = GitHubApp(credentials)
    assert await app.installation_token(9) == TOKEN
    gh = app.installation_client(9)
    await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice")
    assert github.token_route.call_count == 1


async def test_tokens_are_per_installation(credentials, github):
    app = GitHubApp(credentials)
    await app.installation_token(1)
    await app.installation_token(2)
    assert github.token_route.call_count == 2


async def test_an_expiring_token_is_renewed(credentials, github):
    github.token_ttl = timedelta(seconds=30)  # githubkit keeps tokens until a minute before expiry
    app = GitHubApp(credentials)
    await app.installation_token(1)
    await app.installation_token(1)
    assert github.token_route.call_count == 2


async def test_server_error_then_success(credentials, github):
    ok = github.permission_route.side_effect
    github.permission_route.side_effect = [httpx.Response(500), httpx.Response(502), ok]
    app = GitHubApp(credentials, retry_backoff_s=0.01)
    gh = app.installation_client(1)
    response = await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice")
    assert response.json()["permission"] == "write"
    assert github.permission_route.call_count == 3


async def test_validation_errors_are_not_retried(credentials, github):
    github.create_pull_route.side_effect = lambda request, **_: httpx.Response(
        422, json={"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom"}]})
    app = GitHubApp(credentials, retry_backoff_s=0.01)
    gh = app.installation_client(1)
    with pytest.raises(RequestFailed):
        await gh.rest.pulls.async_create("octo", "repo", data={"title": "t", "head": "h", "base": "main"})
    assert github.create_pull_route.call_count == 1


async def test_rate_limit_honours_retry_after(credentials, github):
    """`Retry-After: 0` retries at once (githubkit itself would read a zero wait as 60 s)."""
    ok = github.permission_route.side_effect
    limited = httpx.Response(403, headers={"retry-after": "0"}, json={"message": "You have exceeded a secondary rate limit"})
    github.permission_route.side_effect = [limited, ok]
    app = GitHubApp(credentials)
    gh = app.installation_client(1)
    await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice")
    assert github.permission_route.call_count == 2


async def test_rate_limit_longer_than_the_cap_is_not_waited_for(credentials, github):
    limited = httpx.Response(429, headers={"retry-after": "3600"}, json={"message": "secondary rate limit"})
    github.permission_route.side_effect = [limited]
    app = GitHubApp(credentials)
    gh = app.installation_client(1)
    with pytest.raises(RequestFailed):
        await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice")
    assert github.permission_route.call_count == 1


def test_retry_budget_caps_a_jobs_total_wait():
    policy = RetryPolicy(backoff_s=10, budget_s=25)

    request = httpx.Request("GET", "https://api.github.com/x")
    exc = RequestFailed(Response(httpx.Response(503, request=request), Any))
    assert policy(exc, 0).do_retry  # waits 10 s
    assert not policy(exc, 1).do_retry  # 20 s more would pass the 25 s budget
    assert policy.waited_s == 10


async def test_github_enterprise_base_url(credentials):
    with respx.mock(assert_all_called=False) as mock:
        github = FakeGitHub(mock, api_url="https://ghe.example.com/api/v3")
        app = GitHubApp(credentials, api_url="https://ghe.example.com/api/v3")
        assert await app.installation_token(3) == TOKEN
    assert github.token_route.calls[0].request.url.path == "/api/v3/app/installations/3/access_tokens"


async def test_clients_have_timeouts(credentials):
    app = GitHubApp(credentials)
    assert app.app_client.config.timeout.read == 30.0
    assert app.installation_client(1).config.timeout.connect == 10.0


async def test_repo_installation_lookup(credentials, github):
    github.installations[REPO] = 77
    app = GitHubApp(credentials)
    assert await app.repo_installation_id(REPO) == 77
    assert await app.repo_installation_id("octo/other") is None


async def test_token_is_not_logged(credentials, github, caplog):
    caplog.set_level(logging.DEBUG)
    app = GitHubApp(credentials)
    await app.installation_token(1)
    gh = app.installation_client(1)
    await gh.rest.repos.async_get_collaborator_permission_level("octo", "repo", "a")
    assert TOKEN not in caplog.text


# --- credentials ---------------------------------------------------------------------------------


def _settings(tmp_path, **kwargs) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kwargs)


def test_credentials_from_settings(tmp_path):
    creds = load_credentials(_settings(tmp_path, github_app_id=1, github_private_key="PEM", github_webhook_secret="s"))
    assert (creds.app_id, creds.private_key.get_secret_value()) == (1, "PEM")


def test_credentials_from_a_key_file(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("PEM FROM FILE")
    creds = load_credentials(_settings(tmp_path, github_app_id=1, github_private_key_path=key, github_webhook_secret="s"))
    assert creds.private_key.get_secret_value() == "PEM FROM FILE"


def test_incomplete_settings_say_what_is_missing(tmp_path):
    with pytest.raises(GitHubAppNotConfigured, match="AURA_GITHUB_WEBHOOK_SECRET is missing"):
        load_credentials(_settings(tmp_path, github_app_id=1, github_private_key="PEM"))
    with pytest.raises(GitHubAppNotConfigured, match="cannot be read"):
        load_credentials(_settings(tmp_path, github_app_id=1, github_private_key_path=tmp_path / "nope.pem",
                                   github_webhook_secret="s"))


def test_no_credentials_at_all_is_none(tmp_path):
    assert load_credentials(_settings(tmp_path)) is None


def test_first_run_credentials_are_saved_owner_only_and_loaded(tmp_path, credentials):
    path = save_credentials(tmp_path / "data", credentials.model_copy(update={"slug": "my-aura"}))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    loaded = load_credentials(_settings(tmp_path / "data"))
    assert (loaded.app_id, loaded.slug) == (APP_ID, "my-aura")
    assert loaded.private_key.get_secret_value() == private_key_pem()


def test_a_broken_credentials_file_is_reported(tmp_path):
    (tmp_path / "github-app.json").write_text("{not json")
    with pytest.raises(GitHubAppNotConfigured, match="not a valid credentials file"):
        load_credentials(_settings(tmp_path))
