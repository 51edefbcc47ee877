"""GET and DELETE /admin/memory/{owner}/{name}: what guidance memory holds, and forgetting one entry."""

from __future__ import annotations

from bot.records import GuidanceEntry
from tests.admin.conftest import AUTH, audit


def test_list_and_forget_memory_entries(client):
    store = client.app.state.runtime.store
    kept = store.add_guidance("acme/calc", GuidanceEntry(source="human", text="Keep calc.py import-free.", author="maria"))
    gone = store.add_guidance("acme/calc", GuidanceEntry(source="review", text="Name tests after behaviour.", path="tests/x.py"))
    other = store.add_guidance("acme/other", GuidanceEntry(source="human", text="Elsewhere."))
    listed = client.get("/admin/memory/acme/calc", headers=AUTH).json()
    assert listed["repo"] == "acme/calc" and [e["id"] for e in listed["entries"]] == [gone, kept]
    assert listed["entries"][1]["author"] == "maria"

    answer = client.delete(f"/admin/memory/acme/calc/{gone}", headers=AUTH)
    assert answer.status_code == 200 and answer.json() == {"repo": "acme/calc", "id": gone, "deleted": True}
    assert [e["id"] for e in client.get("/admin/memory/acme/calc", headers=AUTH).json()["entries"]] == [kept]
    assert client.delete(f"/admin/memory/acme/calc/{gone}", headers=AUTH).status_code == 404
    # an id of another repository is unknown here, and stays
    assert client.delete(f"/admin/memory/acme/calc/{other}", headers=AUTH).status_code == 404
    assert [e.id for e in store.list_guidance("acme/other")] == [other]
    entries = audit(client, "memory.forget")
    assert [(e.decision, e.risk_score, e.actor) for e in entries] == [("not_found", 0.1, "admin-api")] * 2 + [("deleted", 0.1, "admin-api")]


def test_memory_needs_the_token_and_a_numeric_id(client):
    assert client.get("/admin/memory/acme/calc").status_code == 401
    assert client.delete("/admin/memory/acme/calc/abc", headers=AUTH).status_code == 422
    assert client.get("/admin/memory/acme/calc?limit=x", headers=AUTH).status_code == 422
