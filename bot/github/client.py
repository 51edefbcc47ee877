"""The GitHub App's API clients: App (JWT) auth, per-installation clients, retries with a cap, timeouts.

Installation tokens are cached by githubkit until a minute before they expire; `installation_token`
reads the same cache so git and the REST client share one token per installation. The token is only
ever held in memory: never logged, never stored, never written to a file.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import BaseCacheStrategy, MemCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed
from githubkit.retry import RetryOption
from pydantic import BaseModel, SecretStr, ValidationError

from bot.config import Settings

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "github-app.json"  # in the data directory, written by the first-run registration


class GitHubAppNotConfigured(Exception):
    """No app id, private key and webhook secret in the settings or the data directory."""


class AppCredentials(BaseModel):
    app_id: int
    private_key: SecretStr
    webhook_secret: SecretStr
    slug: str | None = None
    html_url: str | None = None


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def load_credentials(settings: Settings) -> AppCredentials | None:
    """Credentials from the settings when they name an app, else from the first-run file, else None."""
    if settings.github_app_id is not None:
        key = settings.github_private_key
        if key is None and settings.github_private_key_path is not None:
            try:
                key = settings.github_private_key_path.read_text()
            except OSError as exc:
                raise GitHubAppNotConfigured(
                    f"AURA_GITHUB_PRIVATE_KEY_PATH={settings.github_private_key_path} cannot be read: {exc}"
                ) from exc
        missing = [
            name
            for name, value in (
                ("AURA_GITHUB_PRIVATE_KEY or AURA_GITHUB_PRIVATE_KEY_PATH", key),
                ("AURA_GITHUB_WEBHOOK_SECRET", settings.github_webhook_secret),
            )
            if not value
        ]
        if missing:
            raise GitHubAppNotConfigured(f"AURA_GITHUB_APP_ID is set but {' and '.join(missing)} is missing")
        return AppCredentials(
            app_id=settings.github_app_id,
            private_key=SecretStr(key),
            webhook_secret=SecretStr(settings.github_webhook_secret),
        )
    path = credentials_path(settings.data_dir)
    if not path.exists():
        return None
    try:
        return AppCredentials.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise GitHubAppNotConfigured(f"{path} is not a valid credentials file: {exc}") from exc


def save_credentials(data_dir: Path, credentials: AppCredentials) -> Path:
    """Write the credentials readable by the owner only (0600), created with that mode, never wider."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = credentials_path(data_dir)
    payload = {
        "app_id": credentials.app_id,
        "private_key": credentials.private_key.get_secret_value(),
        "webhook_secret": credentials.webhook_secret.get_secret_value(),
        "slug": credentials.slug,
        "html_url": credentials.html_url,
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


class RetryPolicy:
    """githubkit's retry decision: transient failures are retried until a time budget is spent.

    Transient: 5xx, 429, timeouts and connection errors (exponential backoff from `backoff_s`, at most
    `max_backoff_s` at once, or the `Retry-After` GitHub sends); secondary rate limits (`Retry-After`)
    and primary ones (until `x-ratelimit-reset`; githubkit turns both into `retry_after`). Any other
    4xx (validation, permission, not found) is never retried: trying again changes nothing.

    There is no count of attempts: one policy per job, and `budget_s` caps that job's total waiting on
    GitHub (with `per_call`, each call's instead: the App's long-lived client). A wait that would overrun
    the budget is not started: the call fails now, and the durable job retries the step later
    (bot/jobs/workflow.py, `publish_attempts`; admission has its own backoff).
    """

    def __init__(
        self, *, backoff_s: float = 1.0, max_backoff_s: float = 60.0, budget_s: float = 600.0, per_call: bool = False,
    ) -> None:
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.budget_s = budget_s
        self.per_call = per_call
        self.waited_s = 0.0

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if self.per_call and retry_count == 0:
            self.waited_s = 0.0
        wait = self.wait_for(exc, retry_count)
        if wait is None:
            return RetryOption(False)
        if self.waited_s + wait > self.budget_s:
            log.warning("GitHub retry budget of %.0fs spent (%.0fs waited); giving up on %r", self.budget_s, self.waited_s, exc)
            return RetryOption(False)
        self.waited_s += wait
        # githubkit sleeps 60 s when told to wait a falsy (zero) timedelta: never hand it exactly zero
        wait = max(wait, 0.01)
        log.warning("GitHub request failed (%r); retry %d in %.1fs", exc, retry_count + 1, wait)
        return RetryOption(True, timedelta(seconds=wait))

    def wait_for(self, exc: GitHubException, retry_count: int) -> float | None:
        """Seconds to wait before trying again, or None when retrying cannot help."""
        if isinstance(exc, RateLimitExceeded):
            return max(exc.retry_after.total_seconds(), 0.0)
        backoff = min(self.backoff_s * 2**retry_count, self.max_backoff_s)
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            if status < 500 and status != 429:
                return None
            header = exc.response.headers.get("retry-after")
            return _seconds(header, backoff) if header else backoff
        if isinstance(exc, RequestError):  # timeouts, refused or reset connections, DNS failures
            return backoff
        return None


def is_transient(exc: BaseException) -> bool:
    """Would the same GitHub call succeed later? (for the durable retry of a failed step)"""
    return isinstance(exc, GitHubException) and RetryPolicy().wait_for(exc, 0) is not None


def _seconds(header: str, default: float) -> float:
    try:
        return max(float(header), 0.0)
    except ValueError:
        return default


class _SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool for every githubkit client of the process.

    githubkit builds a new httpx client per call unless it runs inside `async with gh:` (a context
    variable, so not shared across tasks); each would open its own TLS connections. Handing every client
    this transport keeps connections pooled; closing a per-call client leaves the pool open.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass  # the pool outlives the per-call clients; GitHubApp.aclose closes it

    async def close_pool(self) -> None:
        await self.inner.aclose()


class GitHubApp:
    """The App's clients. One per process; `installation_client` is cheap and shares the token cache."""

    def __init__(
        self,
        credentials: AppCredentials,
        *,
        api_url: str = "https://api.github.com",
        timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=10.0),
        cache_strategy: BaseCacheStrategy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_backoff_s: float = 1.0,
        retry_budget_s: float = 600.0,
    ) -> None:
        self.credentials = credentials
        self.api_url = api_url
        self.timeout = timeout
        self.cache_strategy = cache_strategy or MemCacheStrategy()
        self.transport = _SharedTransport(transport or httpx.AsyncHTTPTransport())
        self.retry_backoff_s = retry_backoff_s
        self.retry_budget_s = retry_budget_s
        self._auth = AppAuthStrategy(credentials.app_id, credentials.private_key.get_secret_value())
        self.app_client = self._client(self._auth, self.retry_policy(per_call=True))

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs) -> GitHubApp:
        credentials = load_credentials(settings)
        if credentials is None:
            raise GitHubAppNotConfigured(
                "no GitHub App configured: set AURA_GITHUB_APP_ID, AURA_GITHUB_PRIVATE_KEY(_PATH) and "
                "AURA_GITHUB_WEBHOOK_SECRET, or register one from the page `aura-sicd serve` shows at /"
            )
        kwargs.setdefault("retry_budget_s", settings.github_retry_budget_s)
        return cls(credentials, api_url=settings.github_api_url, **kwargs)

    async def aclose(self) -> None:
        await self.transport.close_pool()

    def retry_policy(self, *, budget_s: float | None = None, per_call: bool = False) -> RetryPolicy:
        budget = self.retry_budget_s if budget_s is None else min(budget_s, self.retry_budget_s)
        return RetryPolicy(backoff_s=self.retry_backoff_s, budget_s=budget, per_call=per_call)

    def installation_client(self, installation_id: int, *, retry: RetryPolicy | None = None) -> GitHub:
        """A client acting as the installation; pass one `retry` policy per job to cap its waiting."""
        return self._client(self._auth.as_installation(installation_id), retry or self.retry_policy())

    async def installation_token(self, installation_id: int) -> str:
        """The installation's token for git over HTTPS: githubkit's cached one, or a new one it caches."""
        gh = self.installation_client(installation_id)
        # githubkit keys its token cache by this (stable within githubkit 0.16, which we pin)
        key = gh.auth.get_auth_flow(gh)._get_installation_cache_key()
        cache = await self.cache_strategy.get_async_cache_storage()
        if token := await cache.aget(key):
            return token
        response = await self.app_client.rest.apps.async_create_installation_access_token(installation_id)
        data = response.json()
        expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        await cache.aset(key, data["token"], expires - datetime.now(UTC) - timedelta(minutes=1))
        return data["token"]

    async def repo_installation_id(self, repo: str) -> int | None:
        """The installation covering `owner/name` (a repository hook's deliveries carry none), or None."""
        owner, _, name = repo.partition("/")
        try:
            response = await self.app_client.rest.apps.async_get_repo_installation(owner, name)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        return int(response.json()["id"])

    def _client(self, auth, retry: RetryPolicy) -> GitHub:
        return GitHub(
            auth,
            base_url=self.api_url,
            timeout=self.timeout,
            cache_strategy=self.cache_strategy,
            http_cache=False,  # our own short caches decide what may be stale; no hidden HTTP cache
            async_transport=self.transport,
            auto_retry=retry,
            user_agent="aura-sicd",
        )
