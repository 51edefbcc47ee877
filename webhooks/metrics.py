"""Prometheus metrics at `/metrics`, in a registry of their own (so every app, and every test, counts alone).

What is counted, and where it comes from:

- `aura_webhook_deliveries_total{event, outcome}`: every answer of `POST /webhooks/github`
  (`count_deliveries` wraps the receiver; outcome is the answer's `status`: accepted, ignored, duplicate,
  unauthorized, ...). Event names outside the ones we route become `other`, so unsigned requests cannot
  mint label values.
- `aura_jobs{state}`: read at scrape time from the queue when it reports `counts()` (the durable queue),
  else from the deliveries table: received (waiting for admission), enqueued, denied, failed.
- `aura_runs{kind, status}`: the store's runs table at scrape time.
- `aura_iterations_total{status}`, `aura_iteration_reward`, `aura_model_tokens_total{role, model, type}`,
  `aura_model_latency_seconds{role, model}`, `aura_sandbox_check_duration_seconds{check}`: fed from a
  cycle's `EventBus` — `metrics.observe(bus)` subscribes to `IterationCompleted`.

`AURA_METRICS_TOKEN`, when set, must come as `Authorization: Bearer <token>` (Prometheus'
`authorization` scrape option); without it `/metrics` is open, as exporters usually are.

Events are counted in the process that runs the cycle: a separate worker process attaches its own bus to
a `Metrics` of its own (and exposes it), or runs the cycle in this one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from bot.events import EventBus, IterationCompleted
from bot.records import IterationRecord
from bot.store import Store

REWARD_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600)
SANDBOX_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ADMISSION_STATES = ("received", "enqueued", "denied", "failed")

StateCounts = Callable[[], dict[str, int]]


class _GaugeFamily(Collector):
    """A labelled gauge whose values are read when Prometheus scrapes."""

    def __init__(self, name: str, documentation: str, labels: list[str], read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]):
        self.name, self.documentation, self.labels, self.read = name, documentation, labels, read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, number in self.read():
            family.add_metric(list(values), number)
        yield family

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labels)]


class Metrics:
    def __init__(self, store: Store | None = None, *, job_counts: StateCounts | None = None, events: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = store
        self.job_counts = job_counts
        self.events = set(events) | {"ping"}
        r = self.registry
        self.deliveries = Counter("aura_webhook_deliveries", "Webhook deliveries by event and answer.",
                                  ["event", "outcome"], registry=r)
        self.iterations = Counter("aura_iterations", "Cycle iterations by status.", ["status"], registry=r)
        self.reward = Histogram("aura_iteration_reward", "Reward of scored iterations.", buckets=REWARD_BUCKETS, registry=r)
        self.tokens = Counter("aura_model_tokens", "Model tokens by role, model and type (prompt, completion).",
                              ["role", "model", "type"], registry=r)
        self.latency = Histogram("aura_model_latency_seconds", "Model call duration (Ollama's total_duration).",
                                 ["role", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.sandbox = Histogram("aura_sandbox_check_duration_seconds", "Sandbox check duration by check.",
                                 ["check"], buckets=SANDBOX_BUCKETS, registry=r)
        r.register(_GaugeFamily("aura_jobs", "Jobs by state.", ["state"], self._jobs))
        r.register(_GaugeFamily("aura_runs", "Runs in the store by kind and status.", ["kind", "status"], self._runs))

    # --- feeding --------------------------------------------------------------------------------

    def observe(self, bus: EventBus) -> Callable[[], None]:
        """Count every iteration the bus reports; returns the unsubscribe function."""
        return bus.subscribe(IterationCompleted, lambda event: self.record_iteration(event.record))

    def record_iteration(self, record: IterationRecord) -> None:
        self.iterations.labels(record.status.value).inc()
        if record.reward is not None:
            self.reward.observe(record.reward.value)
        for call in record.llm_calls:
            self.tokens.labels(call.role, call.model, "prompt").inc(call.prompt_tokens)
            self.tokens.labels(call.role, call.model, "completion").inc(call.completion_tokens)
            if call.ok:
                self.latency.labels(call.role, call.model).observe(call.duration_ms / 1000)
        if record.check_report is not None:
            for check in record.check_report.checks:
                self.sandbox.labels(check.name).observe(check.duration_s)

    def record_delivery(self, event: str | None, outcome: str) -> None:
        self.deliveries.labels(event if event in self.events else "other", outcome).inc()

    # --- reading at scrape time -----------------------------------------------------------------

    def _jobs(self) -> Iterable[tuple[tuple[str, ...], float]]:
        if self.job_counts is not None:
            counts = self.job_counts()
        elif self.store is not None:
            counts = self.store.delivery_counts(ADMISSION_STATES)
            counts = {state: counts.get(state, 0) for state in ADMISSION_STATES}
        else:
            counts = {}
        return [((state,), float(n)) for state, n in sorted(counts.items())]

    def _runs(self) -> Iterable[tuple[tuple[str, ...], float]]:
        if self.store is None:
            return []
        return [((row.kind, row.status), float(row.count)) for row in self.store.run_counts()]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def job_counts_of(queue: Any) -> StateCounts | None:
    """The queue's own `counts()` (state → number of jobs) when it has one."""
    counts = getattr(queue, "counts", None)
    return counts if callable(counts) else None


async def metrics_endpoint(request: Request) -> Response:
    expected = request.app.state.runtime.settings.metrics_token
    if expected:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(expected.encode(), given.strip().encode()):
            return Response("send the metrics token: Authorization: Bearer <AURA_METRICS_TOKEN>\n", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    metrics: Metrics = request.app.state.metrics
    body = await asyncio.to_thread(metrics.exposition)  # the gauges query the store
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def count_deliveries(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Wrap the receiver: count each answer by its event header and the `status` of its JSON body."""

    async def counted(request: Request) -> Response:
        response = await endpoint(request)
        metrics: Metrics | None = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            try:
                outcome = json.loads(bytes(response.body)).get("status", "unknown")
            except (ValueError, AttributeError):
                outcome = "unknown"
            metrics.record_delivery(request.headers.get("x-github-event"), str(outcome))
        return response

    return counted
