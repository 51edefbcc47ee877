from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from bot.github.client import AppCredentials, GitHubApp
from bot.github.permissions import PermissionChecker
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, private_key_pem


def _checker(clock) -> PermissionChecker:
    app = GitHubApp(AppCredentials(app_id=APP_ID, private_key=SecretStr(private_key_pem()),
                                   webhook_secret=SecretStr(WEBHOOK_SECRET)))
    return PermissionChecker(app, ttl_s=60, clock=clock)


@pytest.mark.parametrize(("permission", "allowed"), [("admin", True), ("maintain", True), ("write", True),
                                                     ("triage", False), ("read", False), ("none", False)])
async def test_write_maintain_admin_may_trigger(github, permission, allowed):
    github.permission = permission
    assert await _checker(lambda: 0.0).can_write(1, "octo/calc", "alice") is allowed


async def test_answers_are_cached_briefly(github):
    now = [0.0]
    checker = _checker(lambda: now[0])
    assert await checker.can_write(1, "octo/calc", "alice")
    github.permission = "read"
    now[0] = 59.0
    assert await checker.can_write(1, "octo/calc", "Alice")  # cached (logins are case-insensitive)
    now[0] = 61.0
    assert not await checker.can_write(1, "octo/calc", "alice")
    assert github.permission_route.call_count == 2


async def test_not_a_collaborator(github):
    github.permission_route.side_effect = lambda request, **_: httpx.Response(404, json={"message": "Not Found"})
    assert not await _checker(lambda: 0.0).can_write(1, "octo/calc", "stranger")
