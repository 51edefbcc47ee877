"""compose.yaml: the bot, scalable workers, PostgreSQL with a volume and Ollama (no Compose plugin needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_postgres_keeps_its_data_in_a_volume_and_reports_health():
    postgres = SERVICES["postgres"]
    [volume] = postgres["volumes"]
    name, path = volume.split(":")
    assert name in COMPOSE["volumes"] and path == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_bot_and_workers_share_the_store_and_the_job_queue_on_postgres():
    for name in ("aura", "worker"):
        env = SERVICES[name]["environment"]
        assert env["AURA_STORE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["AURA_STORE_URL"]
        assert env["AURA_DBOS_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["AURA_DBOS_URL"]
        assert env["OLLAMA_HOST"] == "http://ollama:11434"
        assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["aura"]["environment"]["AURA_SERVE_RUNS_JOBS"] == "false"
    assert SERVICES["aura"]["environment"]["AURA_DBOS_EXECUTOR_ID"] == "serve"


def test_workers_scale_each_with_an_executor_id_of_its_own():
    worker = SERVICES["worker"]
    # `--scale worker=N` fails on a fixed container name or host port
    assert "container_name" not in worker and "ports" not in worker
    command = " ".join(worker["command"])
    assert "aura-sicd worker" in command and '--executor-id "worker-$$HOSTNAME"' in command
    assert "AURA_DBOS_EXECUTOR_ID" not in worker["environment"]  # would give every replica the same id
