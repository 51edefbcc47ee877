"""Every repository with memory — GitHub owner/name or a local folder name — can be listed and
forgotten through the admin API, audited as the CLI audits it (issue 10, item 8)."""

from __future__ import annotations

from bot.learning.memory import forget
from bot.records import GuidanceEntry
from tests.admin.conftest import AUTH


def test_local_and_github_memory_are_listed_and_forgotten(client):
    store = client.app.state.runtime.store
    local = store.add_guidance("repo3", GuidanceEntry(source="human", text="Keep repo3's CLI flags stable."))
    store.add_guidance("acme/calc", GuidanceEntry(source="review", text="Name tests after behaviour."))

    listed = client.get("/admin/memory", headers=AUTH)
    assert listed.status_code == 200
    assert listed.json() == {"repositories": [{"repo": "acme/calc", "entries": 1}, {"repo": "repo3", "entries": 1}]}

    repo3 = client.get("/admin/memory/repo3", headers=AUTH).json()
    assert repo3["repo"] == "repo3" and [e["id"] for e in repo3["entries"]] == [local]
    unknown = client.get("/admin/memory/local/repo3", headers=AUTH)
    assert unknown.status_code == 404 and "GET /admin/memory" in unknown.json()["detail"]

    assert client.delete(f"/admin/memory/repo3/{local}", headers=AUTH).json() == {"repo": "repo3", "id": local, "deleted": True}
    assert client.get("/admin/memory/repo3", headers=AUTH).status_code == 404  # nothing left to remember
    assert client.delete(f"/admin/memory/repo3/{local}", headers=AUTH).status_code == 404


def test_the_api_writes_the_audit_entry_the_cli_writes(client):
    store = client.app.state.runtime.store
    by_api = store.add_guidance("repo3", GuidanceEntry(source="human", text="One."))
    by_cli = store.add_guidance("repo3", GuidanceEntry(source="human", text="Two."))
    client.delete(f"/admin/memory/repo3/{by_api}", headers=AUTH)
    forget(store, "repo3", by_cli)  # what `aura-sicd learning forget repo3 ID` runs
    cli, api = store.list_audit(action="memory.forget")[:2]
    assert (api.actor, cli.actor) == ("admin-api", "cli")
    assert (api.subject, cli.subject) == (f"repo3#guidance-{by_api}", f"repo3#guidance-{by_cli}")
    assert (api.decision, api.risk_score) == (cli.decision, cli.risk_score) == ("deleted", 0.1)


def test_repository_names_are_checked(client):
    assert client.get("/admin/memory/a/b/c", headers=AUTH).status_code == 422
    assert client.get("/admin/memory/..", headers=AUTH).status_code in (404, 422)  # normalised away or refused
    assert client.get("/admin/memory", headers={}).status_code == 401


def test_the_schema_names_the_repo_parameter(client):
    paths = client.get("/admin/openapi.json", headers=AUTH).json()["paths"]
    assert "/admin/memory" in paths and "/admin/memory/{repo}" in paths and "/admin/memory/{repo}/{guidance_id}" in paths
    params = [p["name"] for p in paths["/admin/memory/{repo}/{guidance_id}"]["delete"]["parameters"]]
    assert params == ["repo", "guidance_id"]
