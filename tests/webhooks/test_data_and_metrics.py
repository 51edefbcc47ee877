"""Data files are private and `/metrics` can ask for a token (issue 10, item 6)."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.jobs.durable import use_wal
from bot.store import Store
from tests.webhooks.conftest import make_client


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_its_journal_files_are_created_0600(tmp_path):
    path = tmp_path / "data" / "aura.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.audit(actor="t", action="t", subject="t", decision="t")
        files = [p for p in path.parent.iterdir() if p.name.startswith("aura.db")]
        assert len(files) >= 2  # the database and its WAL / journal while open
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_the_dbos_system_database_is_created_0600(tmp_path):
    path = tmp_path / "data" / "dbos.sqlite"
    use_wal(f"sqlite:///{path}")
    assert mode(path) == 0o600


def test_an_existing_world_readable_database_is_tightened(tmp_path):
    path = tmp_path / "aura.db"
    Store.open(f"sqlite:///{path}").close()
    path.chmod(0o644)
    Store.open(f"sqlite:///{path}").close()
    assert mode(path) == 0o600


def test_metrics_are_open_by_default_and_want_the_token_when_one_is_set(settings, queue, github):
    with make_client(settings, queue) as client:
        assert client.get("/metrics").status_code == 200
    guarded = settings.model_copy(update={"metrics_token": "scrape-me"})
    with make_client(guarded, queue) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status_code == 200 and "aura_webhook_deliveries_total" in ok.text
