"""Webhook receiver benchmark: signed deliveries on loopback against one `uvicorn` process.

    .venv/bin/python benchmarks/webhook_receiver.py [--latency 2000] [--load 5000] [--burst 5000]

Prints acknowledgement latency (p50/p99, one delivery at a time), sustained deliveries per second with
concurrent senders (and their p99), and checks that a burst with 10% duplicate delivery ids leaves
exactly one job per unique delivery. The server is the real app (SQLite store in a temporary data
directory, the in-memory queue); GitHub is faked inside the server process at the HTTP level, so
admission (installation token, permission check, 👀 reaction) runs as in production. Targets: ≥ 500
deliveries/s with p99 < 50 ms. Every loop is bounded in count; nothing leaves 127.0.0.1.

`--queue dbos` puts the durable queue behind admission (DBOS on SQLite in the data directory, enqueue
only: no job runs) and counts the job workflows it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from githubkit.webhooks import sign

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "bench-secret"
PAYLOAD = ROOT / "tests" / "fixtures" / "github" / "webhooks" / "issues.labeled.json"


# --- the server side (runs in the subprocess) ----------------------------------------------------


def _fake_github(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/access_tokens"):
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return httpx.Response(201, json={"token": "ghs_bench", "expires_at": expires})
    if path.endswith("/permission"):
        return httpx.Response(200, json={"permission": "write", "role_name": "write"})
    if path.endswith("/installation"):
        return httpx.Response(200, json={"id": 1})
    if path.endswith("/reactions"):
        return httpx.Response(201, json={"id": 1, "content": "eyes"})
    return httpx.Response(404, json={"message": "Not Found"})


def make_app():
    """uvicorn --factory target: the real app with the in-memory queue and GitHub faked in-process."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bot.config import Settings
    from bot.github.client import GitHubApp
    from bot.github.job_request import InMemoryJobQueue
    from webhooks.app import create_app

    settings = Settings(_env_file=None, trigger_label="bug")  # data dir, app id, key, secret from AURA_*
    if os.environ.get("BENCH_QUEUE") == "dbos":
        from bot.jobs import DBOSJobQueue

        # the durable queue, enqueue only: the benchmark measures acknowledging and admitting, not the cycle
        queue = DBOSJobQueue(settings, run_jobs=False)
    else:
        queue = InMemoryJobQueue(concurrency=settings.queue_concurrency)

    async def ready() -> None:
        return None

    app = create_app(
        settings,
        queue=queue,
        github_factory=lambda creds: GitHubApp(creds, api_url=settings.github_api_url,
                                               transport=httpx.MockTransport(_fake_github)),
        readiness={"store": ready},
    )

    async def job_ids() -> list[str]:
        if isinstance(queue, InMemoryJobQueue):
            return [j.delivery_id for j in queue.released]
        from dbos import DBOS

        from bot.jobs.workflow import JOB_WORKFLOW

        workflows = await DBOS.list_workflows_async(name=JOB_WORKFLOW, load_input=False, load_output=False)
        return [w.workflow_id for w in workflows]

    async def jobs(request):
        deliveries = request.app.state.runtime.github_store.list_deliveries(limit=100_000)
        by_status: dict[str, int] = {}
        for d in deliveries:
            by_status[d.status] = by_status.get(d.status, 0) + 1
        ids = await job_ids()
        return JSONResponse({"jobs": len(ids), "unique_jobs": len(set(ids)), "deliveries": by_status})

    app.router.routes.append(Route("/_bench/jobs", jobs))
    return app


# --- the client side -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _signed(body: bytes, delivery: str) -> dict[str, str]:
    return {"X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, body, "sha256")}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    The load generator shares two cores with the server: httpx costs more CPU per request than the
    receiver itself, so it would measure the client. This one writes the request bytes and reads the
    status line, headers and Content-Length body, nothing more.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, delivery: str) -> tuple[float, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in _signed(body, delivery).items())
        request = (f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        start = time.perf_counter()
        self.writer.write(request)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return (time.perf_counter() - start) * 1000, status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _sequential(port: int, body: bytes, count: int) -> list[float]:
    conn = Connection(port)
    latencies = []
    try:
        for _ in range(count):
            ms, status = await conn.post(body, str(uuid.uuid4()))
            assert status == 202, status
            latencies.append(ms)
    finally:
        conn.close()
    return latencies


async def _concurrent(port: int, body: bytes, deliveries: list[str], senders: int):
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    todo = iter(deliveries)

    async def sender() -> None:
        conn = Connection(port)
        try:
            for delivery in todo:
                ms, status = await conn.post(body, delivery)
                latencies.append(ms)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return latencies, statuses, time.perf_counter() - start


async def _wait_for_admissions(client: httpx.AsyncClient, expected: int, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        state = (await client.get("/_bench/jobs")).json()
        pending = state["deliveries"].get("received", 0)
        if (state["jobs"] >= expected and pending == 0) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, port: int) -> int:
    # The recorded delivery plus the `installation` key every GitHub App delivery carries (the recorded
    # example was sent to a repository webhook, which has none).
    body = json.dumps({**json.loads(PAYLOAD.read_bytes()), "installation": {"id": 1}}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        await _sequential(port, body, 50)  # warm-up: token, permission cache, connections
        await _wait_for_admissions(client, 50)

        latencies = await _sequential(port, body, args.latency)
        print(f"acknowledgement latency, one delivery at a time ({args.latency}): "
              f"p50 {statistics.median(latencies):.2f} ms, p99 {_percentile(latencies, 0.99):.2f} ms")
        before = await _wait_for_admissions(client, 50 + args.latency)

        load, statuses, elapsed = await _concurrent(port, body, [str(uuid.uuid4()) for _ in range(args.load)], args.senders)
        after_load = await _wait_for_admissions(client, before["jobs"] + args.load)
        drained = time.perf_counter()
        rate = args.load / elapsed
        print(f"sustained: {args.load} deliveries from {args.senders} keep-alive connections in {elapsed:.2f} s = "
              f"{rate:.0f} acknowledged/s; latency p50 {statistics.median(load):.2f} ms, "
              f"p99 {_percentile(load, 0.99):.2f} ms; statuses {statuses}")
        del drained

        unique = [str(uuid.uuid4()) for _ in range(int(args.burst * 0.9))]
        burst = unique + random.Random(7).choices(unique, k=args.burst - len(unique))
        random.Random(11).shuffle(burst)
        start = time.perf_counter()
        _, statuses, elapsed = await _concurrent(port, body, burst, args.senders)
        expected = after_load["jobs"] + len(unique)
        after = await _wait_for_admissions(client, expected)
        all_admitted = time.perf_counter() - start
        new_jobs = after["jobs"] - after_load["jobs"]
        exact = new_jobs == len(unique) and after["unique_jobs"] == after["jobs"]
        print(f"burst: {args.burst} deliveries ({args.burst - len(unique)} duplicate ids) acknowledged in "
              f"{elapsed:.2f} s ({args.burst / elapsed:.0f}/s), all admitted after {all_admitted:.2f} s "
              f"({len(unique) / all_admitted:.0f} jobs/s); statuses {statuses}; "
              f"jobs created {new_jobs} for {len(unique)} unique deliveries -> {'exact' if exact else 'WRONG'}")
        print(f"queue: {args.queue}; delivery records: {after['deliveries']}")
        ok = exact and rate >= 500 and _percentile(load, 0.99) < 50
        print(f"targets (>= 500/s with p99 < 50 ms, exact job count): {'met' if ok else 'NOT met'}")
        return 0 if exact else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=int, default=2000, help="sequential deliveries for the latency figures")
    parser.add_argument("--load", type=int, default=5000, help="deliveries for the sustained-rate figure")
    parser.add_argument("--burst", type=int, default=5000, help="deliveries in the duplicate burst")
    parser.add_argument("--senders", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--queue", choices=["memory", "dbos"], default="memory",
                        help="the in-memory queue, or the durable DBOS queue (SQLite in the data directory)")
    args = parser.parse_args()

    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "AURA_DATA_DIR": data, "AURA_GITHUB_APP_ID": "1", "AURA_GITHUB_PRIVATE_KEY": _private_key(),
               "AURA_GITHUB_WEBHOOK_SECRET": SECRET, "AURA_STORE_URL": f"sqlite:///{data}/aura.db",
               "PYTHONPATH": str(ROOT), "BENCH_QUEUE": args.queue}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.webhook_receiver:make_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=ROOT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                print("the server did not start", file=sys.stderr)
                return 1
            return asyncio.run(run(args, port))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
