"""The installation token goes only to the configured GitHub host (issue 10, item 4)."""

from __future__ import annotations

import json

from tests.fakes.github import webhook_payload
from tests.webhooks.conftest import deliver, make_client

REPO = "Codertocat/Hello-World"


def test_a_delivery_naming_another_host_still_clones_from_the_configured_one(settings, queue, github):
    settings = settings.model_copy(update={"trigger_label": "bug"})
    github.installations[REPO] = 7
    payload = webhook_payload("issues.labeled")
    payload["repository"].update(clone_url="https://evil.example/steal.git", html_url="https://evil.example/steal",
                                 git_url="git://evil.example/steal.git", ssh_url="git@evil.example:steal.git")
    with make_client(settings, queue) as client:
        assert deliver(client, "issues", json.dumps(payload).encode()).status_code == 202
    [job] = queue.released
    assert job.clone_url == "https://github.com/Codertocat/Hello-World.git"


def test_an_enterprise_server_or_a_configured_git_url_decides_the_host(settings, queue, github):
    ghes = settings.model_copy(update={"github_api_url": "https://ghe.acme.test/api/v3"})
    assert ghes.clone_url(REPO) == "https://ghe.acme.test/Codertocat/Hello-World.git"
    mirror = settings.model_copy(update={"github_git_url": "https://git-proxy.acme.test/gh/"})
    assert mirror.clone_url(REPO) == "https://git-proxy.acme.test/gh/Codertocat/Hello-World.git"


def test_a_repository_name_that_is_not_owner_slash_name_is_refused(client, queue):
    payload = webhook_payload("issues.labeled")
    payload["repository"]["full_name"] = "evil.example/../x/y"
    response = deliver(client, "issues", json.dumps(payload).encode())
    assert response.status_code == 400 and "repository.full_name" in response.json()["detail"]
    assert queue.released == []
