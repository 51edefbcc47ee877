"""`/aura forget <id>` in an issue or PR comment: only people with write access; the entry of that
repository is deleted, the decision audited, and the bot says what it did. Nothing is enqueued."""

from __future__ import annotations

import json

from bot.jobs.memory_queue import InMemoryJobQueue
from bot.records import GuidanceEntry
from tests.admin.conftest import make_settings
from tests.fakes.github import webhook_payload
from tests.webhooks.conftest import deliver, make_client

REPO = "Codertocat/Hello-World"


def comment(body: str) -> bytes:
    payload = webhook_payload("variants/issue_comment.created.with-installation")
    payload["comment"]["body"] = body
    return json.dumps(payload).encode()


def test_forget_deletes_the_entry_and_replies(tmp_path, github):
    queue = InMemoryJobQueue()
    with make_client(make_settings(tmp_path), queue) as client:
        store = client.app.state.runtime.store
        entry = store.add_guidance(REPO, GuidanceEntry(source="human", text="Prefer tabs.", author="someone"))
        assert deliver(client, "issue_comment", comment(f"/aura forget {entry}"), delivery="d-forget").status_code == 202
        assert store.list_guidance(REPO) == []
        [audit] = store.list_audit(action="memory.forget")
        delivery = client.app.state.runtime.github_store.get_delivery("d-forget")
        # an unknown id (or another repository's) is answered, nothing deleted
        other = store.add_guidance("acme/other", GuidanceEntry(source="human", text="Elsewhere."))
        deliver(client, "issue_comment", comment(f"/aura forget #{other}"))
        assert [g.id for g in store.list_guidance("acme/other")] == [other]
        deliver(client, "issue_comment", comment("/aura forget that one"))
    assert (audit.decision, audit.actor, audit.risk_score) == ("deleted", "github:Codertocat", 0.1)
    assert delivery.status == "recorded" and "deleted" in delivery.detail
    texts = [text for _, text in github.comments]
    assert texts[0].startswith("@Codertocat done: memory entry") and str(entry) in texts[0]
    assert f"no memory entry {other}" in texts[1]
    assert texts[2].startswith("Usage: `/aura forget <id>`")
    assert queue.released == []


def test_forget_needs_write_permission(tmp_path, github):
    github.permission = "read"
    with make_client(make_settings(tmp_path), InMemoryJobQueue()) as client:
        store = client.app.state.runtime.store
        entry = store.add_guidance(REPO, GuidanceEntry(source="human", text="Prefer tabs."))
        deliver(client, "issue_comment", comment(f"/aura forget {entry}"))
        assert [g.id for g in store.list_guidance(REPO)] == [entry]
        assert store.list_audit(action="memory.forget") == []
    [(_, text)] = github.comments
    assert "write access" in text


def test_forget_is_not_an_improve_command(tmp_path, github):
    with make_client(make_settings(tmp_path), InMemoryJobQueue()) as client:
        answer = deliver(client, "issue_comment", comment("/auraforget 3"))
    assert answer.json()["status"] == "ignored"
