"""Prometheus metrics: fed by the cycle's event bus and the receiver, read by /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.events import EventBus, IterationCompleted
from bot.store import Store
from tests.dashboard.data import attempt
from tests.fakes.github import webhook_bytes
from tests.builders import T0
from tests.webhooks.conftest import deliver
from webhooks.metrics import Metrics, job_counts_of


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_observe_counts_iterations_rewards_tokens_latency_and_sandbox_time():
    metrics, bus = Metrics(), EventBus()
    unsubscribe = metrics.observe(bus)
    await bus.emit(IterationCompleted(record=attempt("r", "e", 1, 0.9, T0, model="gen", repo_file="a.py")))
    await bus.emit(IterationCompleted(record=attempt("r", "e", 2, 0.4, T0, model="gen", repo_file="a.py")))
    unsubscribe()
    await bus.emit(IterationCompleted(record=attempt("r", "e", 3, 0.4, T0, model="gen", repo_file="a.py")))
    got = samples(metrics.exposition().decode())
    assert got[("aura_iterations_total", (("status", "approved"),))] == 1
    assert got[("aura_iterations_total", (("status", "rejected"),))] == 1
    assert got[("aura_iteration_reward_count", ())] == 2 and got[("aura_iteration_reward_sum", ())] == 1.3
    assert got[("aura_iteration_reward_bucket", (("le", "0.5"),))] == 1
    assert got[("aura_model_tokens_total", (("model", "gen"), ("role", "generator"), ("type", "prompt")))] == 200
    assert got[("aura_model_tokens_total", (("model", "qwen2.5:7b"), ("role", "discriminator"), ("type", "completion")))] == 80
    assert got[("aura_model_latency_seconds_sum", (("model", "qwen2.5:7b"), ("role", "discriminator")))] == 4.2
    assert got[("aura_sandbox_check_duration_seconds_count", (("check", "pytest"),))] == 2


def test_metrics_registries_are_independent():
    a, b = Metrics(events=["issues"]), Metrics(events=["issues"])
    a.record_delivery("issues", "accepted")
    key = ("aura_webhook_deliveries_total", (("event", "issues"), ("outcome", "accepted")))
    assert samples(a.exposition().decode())[key] == 1 and key not in samples(b.exposition().decode())


def test_deliveries_jobs_and_runs_are_exposed(open_client):
    client = open_client
    deliver(client, "ping", webhook_bytes("ping"))
    deliver(client, "issues", webhook_bytes("issues.opened"))
    client.post("/webhooks/github", content=b"{}", headers={"X-GitHub-Event": "made-up", "X-Hub-Signature-256": "sha256=00"})
    client.app.state.runtime.store.create_run("r1", kind="cli", repo="acme/calc")  # besides the filled ones
    text = client.get("/metrics").text
    got = samples(text)
    assert got[("aura_webhook_deliveries_total", (("event", "ping"), ("outcome", "pong")))] == 1
    assert got[("aura_webhook_deliveries_total", (("event", "issues"), ("outcome", "ignored")))] == 1
    assert got[("aura_webhook_deliveries_total", (("event", "other"), ("outcome", "unauthorized")))] == 1
    assert got[("aura_jobs", (("state", "enqueued"),))] == 0 and ("aura_jobs", (("state", "received"),)) in got
    assert got[("aura_runs", (("kind", "cli"), ("status", "running")))] == 1
    assert got[("aura_runs", (("kind", "training"), ("status", "completed")))] == 6


def test_a_queue_that_counts_its_jobs_is_asked(tmp_path):
    class CountingQueue:
        def counts(self) -> dict[str, int]:
            return {"pending": 3, "running": 1}

    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        got = samples(Metrics(store, job_counts=job_counts_of(CountingQueue())).exposition().decode())
    assert got[("aura_jobs", (("state", "pending"),))] == 3 and got[("aura_jobs", (("state", "running"),))] == 1
