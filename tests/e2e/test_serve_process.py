"""`aura-sicd serve` as a real process: a signed delivery in, the pull request out; then killed with
SIGKILL in the middle of a job and started again, and still exactly one pull request.

GitHub and Ollama are fake HTTP servers on 127.0.0.1 (tests/e2e/servers.py), git pushes to a local bare
repository, checks run in the bubblewrap sandbox, jobs are DBOS workflows on SQLite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from tests.e2e.servers import RouterServer, free_port
from tests.fakes.github import (
    APP_ID,
    WEBHOOK_SECRET,
    FakeGitHub,
    private_key_pem,
    signed_headers,
    webhook_payload,
)
from tests.fakes.ollama import FakeOllama
from tests.jobs.conftest import make_remote
from tests.repos import DISC, GEN, GOOD_RUBRIC, RIGHT_FIX, git
from tests.wait import answers, still_running, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo/calc"
INSTALLATION = 4242


class Fakes:
    def __init__(self) -> None:
        self.github_router = respx.Router(assert_all_called=False)
        self.ollama_router = respx.Router(assert_all_called=False)
        github_port, ollama_port = free_port(), free_port()
        self.github = FakeGitHub(self.github_router, api_url=f"http://127.0.0.1:{github_port}")
        self.ollama = FakeOllama(self.ollama_router, host=f"http://127.0.0.1:{ollama_port}").pull(GEN, DISC)
        self.ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
        self.hold_scoring = threading.Event()  # set: the discriminator's reply waits until released
        self.scoring_started = threading.Event()
        self.release = threading.Event()
        self.github_server = RouterServer(self.github_router, github_port)
        self.ollama_server = RouterServer(self.ollama_router, ollama_port, before=self._maybe_hold)

    def _maybe_hold(self, request: httpx.Request) -> None:
        scoring = request.url.path == "/api/chat" and b'"title":"Rubric"' in request.content.replace(b" ", b"")
        if scoring and self.hold_scoring.is_set():
            self.scoring_started.set()
            self.release.wait(timeout=60)

    def pulls_created(self) -> list[dict]:
        return [body for method, path, body in self.github.requests if method == "POST" and path == f"/repos/{REPO}/pulls"]


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    with f.github_server, f.ollama_server:
        yield f
    f.release.set()


def start_serve(tmp_path: Path, fakes: Fakes, port: int) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "OLLAMA_", "DBOS"))},
        "AURA_DATA_DIR": str(tmp_path / "data"),
        "AURA_STORE_URL": f"sqlite:///{tmp_path / 'aura.db'}",
        "AURA_GITHUB_APP_ID": str(APP_ID),
        "AURA_GITHUB_PRIVATE_KEY": private_key_pem(),
        "AURA_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "AURA_GITHUB_API_URL": fakes.github.api,
        "AURA_GITHUB_GIT_URL": str(tmp_path / "git"),  # git goes to <this>/octo/calc.git, never to a payload's URL
        "OLLAMA_HOST": fakes.ollama.host,
        "AURA_SANDBOX_BACKEND": "bwrap",
        "AURA_MAX_ITERATIONS": "1",
        "AURA_PUBLIC_URL": "https://bot.example.com",
        "PYTHONPATH": str(ROOT),
    }
    log = open(tmp_path / f"serve-{port}-{time.time():.0f}.log", "w")  # noqa: SIM115 (handed to the child)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    log.close()  # the child keeps its own descriptor
    def ready() -> bool:
        still_running(process, "aura-sicd serve")
        return answers(f"http://127.0.0.1:{port}/healthz")

    try:
        wait_until(ready, timeout=30, interval=0.1, what="aura-sicd serve to answer /healthz")
    except AssertionError:
        process.kill()
        raise
    return process


def labeled_delivery(remote: Path) -> bytes:
    payload = webhook_payload("issues.labeled")
    payload["label"]["name"] = "aura-sicd"
    payload["installation"] = {"id": INSTALLATION}
    payload["issue"].update(number=12, title="add() returns the wrong result", body="add(2, 3) should be 5.")
    payload["repository"].update(full_name=REPO, name="calc", clone_url=str(remote), default_branch="main")
    payload["repository"]["owner"]["login"] = "octo"
    payload["sender"]["login"] = "alice"
    return json.dumps(payload).encode()


def post_delivery(port: int, body: bytes, delivery: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/webhooks/github", content=body,
                      headers=signed_headers("issues", body, delivery), timeout=10)


def test_delivery_in_pr_out_and_a_sigkill_mid_job_still_makes_exactly_one_pr(tmp_path: Path, fakes: Fakes):
    timings: dict[str, float] = {}
    remote = make_remote(tmp_path / "origin")
    (tmp_path / "git" / "octo").mkdir(parents=True)
    (tmp_path / "git" / "octo" / "calc.git").symlink_to(remote)
    body = labeled_delivery(remote)
    port = free_port()

    # 1. one delivery → one PR, in a single process lifetime
    serve = start_serve(tmp_path, fakes, port)
    try:
        response = post_delivery(port, body, str(uuid.uuid4()))
        assert response.status_code == 202, response.text
        timings["first PR"] = wait_until(lambda: len(fakes.pulls_created()) == 1, 45, "the first pull request")
    finally:
        serve.terminate()
        serve.wait(timeout=20)
    [first] = fakes.pulls_created()
    assert first["head"].startswith("aura-sicd/") and first["base"] == "main" and "Closes #12" in first["body"]
    assert git(remote, "rev-parse", f"refs/heads/{first['head']}").strip()

    # 2. a second issue; the process is killed while the discriminator is scoring, then restarted
    fakes.hold_scoring.set()
    generated_before = len(fakes.ollama.requests_for("generator"))
    serve = start_serve(tmp_path, fakes, port)
    try:
        second = json.loads(body)
        second["issue"].update(number=13, title="add() still subtracts", body="add(1, 1) should be 2.")
        response = post_delivery(port, json.dumps(second).encode(), str(uuid.uuid4()))
        assert response.status_code == 202, response.text
        timings["to scoring"] = wait_until(fakes.scoring_started.is_set, 45, "the job to reach scoring")
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=10)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert len(fakes.pulls_created()) == 1  # the killed job had not published
    generated_mid = len(fakes.ollama.requests_for("generator"))
    assert generated_mid == generated_before + 1
    fakes.hold_scoring.clear()
    fakes.release.set()

    restarted = time.monotonic()
    serve = start_serve(tmp_path, fakes, port)
    try:
        wait_until(lambda: len(fakes.pulls_created()) == 2, 45, "the resumed job's pull request")
        timings["resume to PR"] = time.monotonic() - restarted
        time.sleep(1.5)  # anything doubled would show up now
    finally:
        serve.terminate()
        serve.wait(timeout=20)

    pulls = fakes.pulls_created()
    assert len(pulls) == 2 and len({p["head"] for p in pulls}) == 2
    resumed = pulls[1]
    assert "Closes #13" in resumed["body"]
    # resumed at the step that was cut short: the generator's answer and the checks were not redone
    assert len(fakes.ollama.requests_for("generator")) == generated_mid
    assert git(remote, "rev-parse", f"refs/heads/{resumed['head']}").strip()
    links = [b for n, b in fakes.github.comments if n == 13 and "opened a pull request" in b]
    assert len(links) == 1
    print("e2e timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
