"""The receiver's gate: signature, size, JSON, routing, redelivery, bots, health."""

from __future__ import annotations

import json

from githubkit.webhooks import sign

from bot.store.github import DeliveryRecord, GitHubStore
from tests.fakes.github import webhook_bytes, webhook_payload
from tests.webhooks.conftest import deliver, make_client


def runtime_of(client):
    return client.app.state.runtime


def test_missing_signature_is_401_and_records_nothing(client, queue):
    body = webhook_bytes("issues.labeled")
    response = client.post("/webhooks/github", content=body,
                           headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"})
    assert response.status_code == 401
    assert runtime_of(client).github_store.get_delivery("d-1") is None
    assert queue.released == []


def test_wrong_secret_is_401(client):
    response = deliver(client, "issues", webhook_bytes("issues.labeled"), secret="not-the-secret")
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["detail"]


def test_sha1_signature_in_the_sha256_header_is_refused(client):
    body = webhook_bytes("ping")
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2",
               "X-Hub-Signature-256": sign("test-webhook-secret", body, "sha1")}
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 401


def test_malformed_json_is_400(client):
    response = deliver(client, "issues", b'{"action": "labeled", ')
    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]


def test_json_that_is_not_an_object_is_400(client):
    assert deliver(client, "issues", b"[1, 2]").status_code == 400


def test_body_over_25_mb_is_413(client):
    body = b" " * (25 * 1024 * 1024 + 1)
    response = client.post("/webhooks/github", content=body,
                           headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": "big"})
    assert response.status_code == 413


def test_ping_is_answered(client):
    response = deliver(client, "ping", webhook_bytes("ping"))
    assert response.status_code == 200
    assert response.json() == {"status": "pong", "zen": webhook_payload("ping")["zen"]}


def test_unhandled_event_is_acknowledged_and_ignored(client, queue):
    response = deliver(client, "pull_request", webhook_bytes("pull_request.opened"))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    star = json.dumps({"action": "created", "starred_at": None}).encode()
    assert deliver(client, "star", star).json()["status"] == "ignored"
    assert queue.released == []


def test_payload_without_the_fields_we_need_is_400(client):
    response = deliver(client, "issues", json.dumps({"action": "labeled", "issue": {"number": 1}}).encode())
    assert response.status_code == 400
    assert "repository" in response.json()["detail"]


def test_bot_sender_is_ignored(client, queue, settings):
    payload = webhook_payload("issues.labeled")
    payload["label"]["name"] = settings.trigger_label
    payload["sender"].update(login="aura-sicd[bot]", type="Bot")
    response = deliver(client, "issues", json.dumps(payload).encode(), delivery="from-bot")
    assert response.json() == {"status": "ignored", "reason": "sent by the bot account aura-sicd[bot]"}
    assert runtime_of(client).github_store.get_delivery("from-bot") is None
    assert queue.released == []


def test_redelivery_enqueues_once(settings, queue, github):
    settings = settings.model_copy(update={"trigger_label": "bug"})
    github.installations["Codertocat/Hello-World"] = 7
    body = webhook_bytes("issues.labeled")
    with make_client(settings, queue) as client:
        first = deliver(client, "issues", body, delivery="same-delivery")
        again = deliver(client, "issues", body, delivery="same-delivery")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert [job.delivery_id for job in queue.released] == ["same-delivery"]
    assert github.token_route.call_count == 1
    assert github.permission_route.call_count == 1


def test_healthz_and_readyz_say_which_dependency_is_down(settings, queue, github):
    async def ok():
        return None

    async def down():
        return "connection refused"

    with make_client(settings, queue, readiness={"store": ok, "ollama": down}) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"store": "ok", "ollama": "connection refused"}


def test_readyz_is_200_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_acknowledged_but_unadmitted_delivery_is_admitted_on_next_start(settings, queue, github):
    """A stop between the acknowledgement and admission loses nothing: the next start admits it."""
    from bot.store import Store

    github.installations["Codertocat/Hello-World"] = 7
    job = {
        "kind": "issue", "delivery_id": "left-over", "event": "issues.labeled", "repo": "Codertocat/Hello-World",
        "clone_url": "https://github.com/Codertocat/Hello-World.git", "number": 1, "title": "Spelling error",
        "triggered_by": "Codertocat", "label": "aura-sicd",
    }
    with Store.open(settings.database_url) as store:
        GitHubStore(store).write_deliveries([DeliveryRecord(delivery_id="left-over", event="issues", action="labeled", job=job)])
    with make_client(settings, queue):
        pass  # startup admits it; shutdown waits for the admission to finish
    assert [j.delivery_id for j in queue.released] == ["left-over"]
    with Store.open(settings.database_url) as store:
        assert GitHubStore(store).get_delivery("left-over").status == "enqueued"
