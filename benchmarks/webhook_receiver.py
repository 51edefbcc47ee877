"""Webhook receiver benchmark: signed deliveries on loopback against one `uvicorn` process.

    .venv/bin/python benchmarks/webhook_receiver.py [--admit serve|worker] [--queue memory|dbos]
        [--latency 2000] [--load 5000] [--burst 5000] [--store sqlite|postgres|both] [--postgres-url URL]

Prints acknowledgement latency (p50/p99, one delivery at a time), sustained acknowledgements per second
with concurrent senders (and their p99), how fast admission follows (admitted while acknowledging, time
until everything is admitted, admissions/s), and checks that a burst with 10% duplicate delivery ids
leaves exactly one job per unique delivery once everything is admitted. Targets: ≥ 500 deliveries/s
with p99 < 50 ms. Every loop is bounded in count; nothing leaves 127.0.0.1.

The server is the real app (SQLite store in a temporary data directory). GitHub is faked at the HTTP
level inside whichever process admits, so admission (installation token, permission check, 👀
reaction, enqueue) runs as in production:

- `--admit serve` (default): the admitter runs in the server process (`AURA_SERVE_ADMITS=true`).
- `--admit worker`: the server only records and acknowledges (`AURA_SERVE_ADMITS=false`); admission
  runs in a second process, `bot.commands.worker.work` (what `aura-sicd worker` runs) with jobs not
  run. Needs the durable queue.

`--queue dbos` (implied by `--admit worker`) puts the durable queue behind admission (DBOS on SQLite
in the data directory, enqueue only: no job runs) and counts the job workflows it holds.

`--store postgres` puts the store (and DBOS) on fresh databases of a PostgreSQL server (`--postgres-url`,
else AURA_TEST_POSTGRES_URL); `--store both` runs everything on SQLite, then on PostgreSQL, and prints
the figures side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def _fake_app(settings):
    from bot.github.client import GitHubApp

    def factory(creds):
        return GitHubApp(creds, api_url=settings.github_api_url, transport=httpx.MockTransport(_fake_github))

    return factory


def make_app():
    """uvicorn --factory target: the real app, GitHub faked in-process, the queue BENCH_QUEUE names."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bot.config import Settings
    from bot.jobs.memory_queue import InMemoryJobQueue
    from webhooks.app import create_app

    settings = Settings(_env_file=None, trigger_label="bug")  # data dir, app id, key, secret, admits from AURA_*
    if os.environ.get("BENCH_QUEUE") == "dbos":
        from bot.jobs import DBOSJobQueue

        # the durable queue, enqueue only: the benchmark measures acknowledging and admitting, not the cycle
        queue = DBOSJobQueue(settings, run_jobs=False)
    else:
        queue = InMemoryJobQueue(concurrency=settings.queue_concurrency)

    async def ready() -> None:
        return None

    app = create_app(settings, queue=queue, github_factory=_fake_app(settings), readiness={"store": ready})

    def statuses(store) -> dict[str, int]:
        return store.delivery_counts()

    async def job_ids() -> list[str]:
        if isinstance(queue, InMemoryJobQueue):
            return [j.delivery_id for j in queue.released]
        from dbos import DBOS

        from bot.jobs.workflow import JOB_WORKFLOW

        workflows = await DBOS.list_workflows_async(name=JOB_WORKFLOW, load_input=False, load_output=False)
        return [w.workflow_id for w in workflows]

    async def deliveries(request):
        """Delivery rows by status (one indexed GROUP BY; polled while admission catches up)."""
        runtime = request.app.state.runtime
        return JSONResponse(await asyncio.to_thread(statuses, runtime.store))

    async def jobs(request):
        ids = await job_ids()
        return JSONResponse({"jobs": len(ids), "unique_jobs": len(set(ids))})

    app.router.routes.append(Route("/_bench/deliveries", deliveries))
    app.router.routes.append(Route("/_bench/jobs", jobs))
    return app


def run_admitter() -> int:
    """The `--admit worker` process: `aura-sicd worker`'s `work()`, GitHub faked, jobs not run."""
    import logging

    from bot.commands.worker import work
    from bot.config import Settings
    from bot.github.client import load_credentials
    from bot.store import Store

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(_env_file=None, trigger_label="bug")
    github = _fake_app(settings)(load_credentials(settings))
    with Store.open(settings.database_url) as store:
        asyncio.run(work(settings, store, github, run_jobs=False))
    return 0


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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds the server (and the worker) spend during a phase: where the time goes on 2 cores."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def read(self) -> dict[str, float]:
        return {name: _cpu_seconds(pid) for name, pid in self.pids.items()}

    @staticmethod
    def describe(before: dict[str, float], after: dict[str, float], wall_s: float) -> str:
        return ", ".join(f"{name} {after[name] - before[name]:.1f} s ({(after[name] - before[name]) / wall_s:.0%} of a core)"
                         for name in before)


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


WAITING = ("received", "failed")


async def _statuses(client: httpx.AsyncClient) -> dict[str, int]:
    return (await client.get("/_bench/deliveries")).json()


async def _wait_for_admissions(client: httpx.AsyncClient, timeout_s: float = 600) -> tuple[dict, dict]:
    """Poll until no delivery waits for admission; then (delivery statuses, job counts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = await _statuses(client)
        if sum(state.get(s, 0) for s in WAITING) == 0 or time.monotonic() > deadline:
            return state, (await client.get("/_bench/jobs")).json()
        await asyncio.sleep(0.1)


def _admitted(state: dict) -> int:
    return sum(n for status, n in state.items() if status not in WAITING)


async def _phase(client: httpx.AsyncClient, port: int, body: bytes, deliveries: list[str], senders: int, cpu: CpuMeter):
    """Send `deliveries`, then wait until all are admitted: acks, latencies, admission figures."""
    before = _admitted(await _statuses(client))
    cpu_before = cpu.read()
    start = time.perf_counter()
    latencies, statuses, elapsed = await _concurrent(port, body, deliveries, senders)
    cpu_used = CpuMeter.describe(cpu_before, cpu.read(), elapsed)
    during = _admitted(await _statuses(client)) - before
    state, jobs = await _wait_for_admissions(client)
    all_admitted = time.perf_counter() - start
    return latencies, statuses, elapsed, during, all_admitted, state, jobs, cpu_used


async def run(args: argparse.Namespace, port: int, cpu: CpuMeter) -> dict[str, float]:
    # The recorded delivery plus the `installation` key every GitHub App delivery carries (the recorded
    # example was sent to a repository webhook, which has none).
    body = json.dumps({**json.loads(PAYLOAD.read_bytes()), "installation": {"id": 1}}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        await _sequential(port, body, 50)  # warm-up: token, permission cache, connections, the admitter
        await _wait_for_admissions(client)

        latencies = await _sequential(port, body, args.latency)
        print(f"acknowledgement latency, one delivery at a time ({args.latency}): "
              f"p50 {statistics.median(latencies):.2f} ms, p99 {_percentile(latencies, 0.99):.2f} ms")
        await _wait_for_admissions(client)

        load, statuses, elapsed, during, all_admitted, _, _, cpu_used = await _phase(
            client, port, body, [str(uuid.uuid4()) for _ in range(args.load)], args.senders, cpu)
        rate, load_p99 = args.load / elapsed, _percentile(load, 0.99)
        print(f"sustained: {args.load} deliveries from {args.senders} keep-alive connections in {elapsed:.2f} s = "
              f"{rate:.0f} acknowledged/s; latency p50 {statistics.median(load):.2f} ms, p99 {load_p99:.2f} ms; "
              f"statuses {statuses}")
        print(f"  CPU while acknowledging: {cpu_used}")
        print(f"  admission: {during} admitted while acknowledging, all {args.load} after {all_admitted:.2f} s "
              f"({args.load / all_admitted:.0f} admissions/s)")
        sustained_admissions = args.load / all_admitted

        _, before_jobs = await _wait_for_admissions(client)
        unique = [str(uuid.uuid4()) for _ in range(int(args.burst * 0.9))]
        burst = unique + random.Random(7).choices(unique, k=args.burst - len(unique))
        random.Random(11).shuffle(burst)
        _, statuses, elapsed, during, all_admitted, state, after_jobs, _ = await _phase(
            client, port, body, burst, args.senders, cpu)
        new_jobs = after_jobs["jobs"] - before_jobs["jobs"]
        exact = new_jobs == len(unique) and after_jobs["unique_jobs"] == after_jobs["jobs"]
        print(f"burst: {args.burst} deliveries ({args.burst - len(unique)} duplicate ids) acknowledged in "
              f"{elapsed:.2f} s ({args.burst / elapsed:.0f}/s); statuses {statuses}")
        print(f"  admission: {during} admitted while acknowledging, all after {all_admitted:.2f} s "
              f"({len(unique) / all_admitted:.0f} admissions/s); jobs created {new_jobs} for {len(unique)} "
              f"unique deliveries -> {'exact' if exact else 'WRONG'}")
        print(f"admit: {args.admit}; queue: {args.queue}; delivery records: {state}")
        ok = exact and rate >= 500 and load_p99 < 50
        print(f"targets (>= 500/s with p99 < 50 ms, exact job count): {'met' if ok else 'NOT met'}")
        assert exact, f"{new_jobs} jobs for {len(unique)} unique deliveries"
        return {"ack p50 ms (one at a time)": statistics.median(latencies),
                "acknowledged/s (sustained)": rate, "ack p99 ms (sustained)": load_p99,
                "admissions/s (sustained)": sustained_admissions,
                "admissions/s (burst)": len(unique) / all_admitted, "exact job count": exact}


def _wait_until_healthy(base_url: str, process: subprocess.Popen) -> bool:
    for _ in range(300):
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


def main() -> int:
    if os.environ.get("BENCH_ROLE") == "admitter":
        return run_admitter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=int, default=2000, help="sequential deliveries for the latency figures")
    parser.add_argument("--load", type=int, default=5000, help="deliveries for the sustained-rate figure")
    parser.add_argument("--burst", type=int, default=5000, help="deliveries in the duplicate burst")
    parser.add_argument("--senders", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--queue", choices=["memory", "dbos"], default=None,
                        help="the in-memory queue, or the durable DBOS queue (SQLite in the data directory); "
                        "default memory, dbos with --admit worker")
    parser.add_argument("--admit", choices=["serve", "worker"], default="serve",
                        help="admission in the server process, or in a separate worker process")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite",
                        help="the store (and DBOS) on SQLite, on PostgreSQL, or both one after the other")
    parser.add_argument("--postgres-url", help="the PostgreSQL server (default AURA_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    if args.admit == "worker":
        if args.queue == "memory":
            parser.error("--admit worker needs --queue dbos: an in-memory queue cannot be shared by two processes")
        args.queue = "dbos"
    args.queue = args.queue or "memory"

    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    figures = {store: bench(args, store) for store in stores}
    if len(stores) > 1:
        print(f"\nadmission side by side (admit: {args.admit}; queue: {args.queue})")
        print(f"{'':32}" + "".join(f"{store:>12}" for store in stores))
        for row in figures[stores[0]]:
            print(f"{row:32}" + "".join(f"{_cell(figures[store][row]):>12}" for store in stores))
    return 0


def _cell(value: float | bool) -> str:
    return str(value) if isinstance(value, bool) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def bench(args: argparse.Namespace, store: str) -> dict[str, float]:
    """One full run (server, maybe a worker) with the store and DBOS on SQLite or on PostgreSQL."""
    print(f"\n== store: {store}")
    with tempfile.TemporaryDirectory() as data, contextlib.ExitStack() as stack:
        urls = {"AURA_STORE_URL": f"sqlite:///{data}/aura.db"}
        if store == "postgres":
            from benchmarks.postgres_db import databases, server_url

            store_url, dbos_url = stack.enter_context(databases(server_url(args.postgres_url), "store", "dbos"))
            urls = {"AURA_STORE_URL": store_url, "AURA_DBOS_URL": dbos_url}
        port = _free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "DBOS"))},
               "AURA_DATA_DIR": data, "AURA_GITHUB_APP_ID": "1", "AURA_GITHUB_PRIVATE_KEY": _private_key(),
               "AURA_GITHUB_WEBHOOK_SECRET": SECRET, **urls,
               "AURA_SERVE_ADMITS": str(args.admit == "serve").lower(), "AURA_DBOS_EXECUTOR_ID": "bench-serve",
               "PYTHONPATH": str(ROOT), "BENCH_QUEUE": args.queue}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.webhook_receiver:make_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=ROOT,
        )
        admitter = None
        try:
            if not _wait_until_healthy(f"http://127.0.0.1:{port}", server):
                raise SystemExit("the server did not start")
            if args.admit == "worker":  # started once the server has created both databases
                admitter = subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve())],
                    env={**env, "BENCH_ROLE": "admitter", "AURA_DBOS_EXECUTOR_ID": "bench-worker"}, cwd=ROOT,
                )
            pids = {"server": server.pid} | ({"worker": admitter.pid} if admitter else {})
            return asyncio.run(run(args, port, CpuMeter(pids)))
        finally:
            for process in (admitter, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
