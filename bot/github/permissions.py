"""Who may trigger the bot: collaborators with write, maintain or admin permission, cached briefly."""

from __future__ import annotations

import time
from collections.abc import Callable

from githubkit.exception import RequestFailed

from bot.github.client import GitHubApp

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class PermissionChecker:
    def __init__(self, app: GitHubApp, *, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 retry_budget_s: float = 20.0):
        self.app = app
        self.retry_budget_s = retry_budget_s  # admission retries later with its own backoff
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    async def can_write(self, installation_id: int, repo: str, login: str) -> bool:
        key = (repo.lower(), login.lower())
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        allowed = await self._fetch(installation_id, repo, login)
        self._cache[key] = (now + self.ttl_s, allowed)
        return allowed

    async def _fetch(self, installation_id: int, repo: str, login: str) -> bool:
        owner, _, name = repo.partition("/")
        gh = self.app.installation_client(installation_id, retry=self.app.retry_policy(budget_s=self.retry_budget_s))
        try:
            response = await gh.rest.repos.async_get_collaborator_permission_level(owner, name, login)
        except RequestFailed as exc:
            if exc.response.status_code == 404:  # not a collaborator at all
                return False
            raise
        data = response.json()
        # `permission` folds maintain into write; `role_name` keeps it (and custom roles): accept either.
        return data.get("permission") in WRITE_PERMISSIONS or data.get("role_name") in WRITE_PERMISSIONS
