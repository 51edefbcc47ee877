"""Jobs per minute with 1, 2 and 4 `aura-sicd worker` processes on one PostgreSQL.

    .venv/bin/python benchmarks/worker_scaling.py [--workers 1,2,4] [--jobs 8] [--postgres-url URL]

For each worker count: fresh store and DBOS databases, `aura-sicd serve` (admits, runs no job) and the
fake GitHub and Ollama HTTP servers of tests/e2e; `--jobs` issues (one partition each) are labeled and
admitted while no worker runs, then the workers start (one job at a time each, a data directory each, as
on separate machines) and work the queue down. Every job is the real one: mirror sync from a local bare
repository, the cycle with the fake model (one iteration), the checks in the bubblewrap sandbox, push,
PR, comments. Throughput is jobs over the time from the first job's start to the last job's end (from
DBOS's own timestamps), so process start-up is left out; wall time from starting the workers is printed
beside it. On a machine with fewer cores than workers the checks compete for CPU: say so with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.postgres_db import databases, server_url
from tests.e2e.servers import free_port
from tests.e2e.test_serve_process import Fakes, post_delivery, wait_for
from tests.e2e.test_workers_postgres import Cluster, issue
from tests.jobs.conftest import make_remote


def measure(workers: int, jobs: int, server: str) -> dict[str, float]:
    fakes = Fakes()
    with (tempfile.TemporaryDirectory(prefix="aura-scale-") as tmp, fakes.github_server, fakes.ollama_server,
          databases(server, "store", "dbos") as (store_url, dbos_url)):
        tmp_path = Path(tmp)
        remote = make_remote(tmp_path / "origin")
        cluster = Cluster(tmp_path, fakes, store_url, dbos_url)
        try:
            port = free_port()
            cluster.start_serve(port)
            for number in range(100, 100 + jobs):
                assert post_delivery(port, issue(remote, number), str(uuid.uuid4())).status_code == 202
            wait_for(lambda: len(cluster.workflows()) == jobs, 60, "every delivery admitted and enqueued")
            started = time.monotonic()
            for n in range(workers):
                cluster.start_worker(f"w{n + 1}")
            wait_for(lambda: sum(w["status"] == "SUCCESS" for w in cluster.workflows()) == jobs, 60 * jobs,
                     "every job done")
            wall = time.monotonic() - started
            done = cluster.workflows()
        finally:
            cluster.stop()
    busy_s = (max(w["completed"] for w in done) - min(w["started"] for w in done)) / 1000
    assert len(fakes.pulls_created()) == jobs, "each job once"
    return {"workers": workers, "jobs": jobs, "busy_s": busy_s, "wall_s": wall,
            "per_minute": jobs / busy_s * 60, "executors": len({w["executor"] for w in done})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--jobs", type=int, default=8, help="jobs per worker count")
    parser.add_argument("--postgres-url", help="the PostgreSQL server (default AURA_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    server = server_url(args.postgres_url)
    rows = []
    for count in (int(n) for n in args.workers.split(",")):
        row = measure(count, args.jobs, server)
        rows.append(row)
        print(f"{count} worker(s): {row['jobs']} jobs in {row['busy_s']:.1f} s = {row['per_minute']:.1f} jobs/min "
              f"(wall {row['wall_s']:.1f} s with start-up; {row['executors']} workers took jobs)", flush=True)
    base = rows[0]["per_minute"]
    print(f"\nworkers  jobs/min  speed-up   (PostgreSQL, fake model, bubblewrap, one job at a time per worker, "
          f"{os.cpu_count()} CPUs)")
    for row in rows:
        print(f"{row['workers']:>7}  {row['per_minute']:>8.1f}  {row['per_minute'] / base:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
