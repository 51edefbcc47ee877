"""The deployment image: built from a local base image, it starts as a non-root user and answers /healthz.

Skipped when Docker is unreachable, except with AURA_REQUIRE_SANDBOXES=1 (CI), where that fails
(tests/backends.py).
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.backends import skip_or_fail
from tests.wait import answers, wait_until

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("AURA_SANDBOX_BASE_IMAGE", "aura-base:bookworm")

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    if _docker("image", "inspect", BASE_IMAGE).returncode != 0:  # the engine answers: the `docker` marker
        skip_or_fail("docker", f"the base image {BASE_IMAGE} is not built (../shared/ci/docker-up.sh builds it)")
    tag = f"aura-sicd:test-{uuid.uuid4().hex[:8]}"
    build = _docker("build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", tag, str(ROOT), timeout=1200)
    assert build.returncode == 0, build.stderr[-3000:]
    yield tag
    _docker("image", "rm", "-f", tag)


def test_image_starts_non_root_and_answers_healthz(image):
    run = _docker("run", "-d", "-p", "127.0.0.1::3000", image)
    assert run.returncode == 0, run.stderr
    container = run.stdout.strip()
    try:
        port = _docker("port", container, "3000").stdout.splitlines()[0].rsplit(":", 1)[1]
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz", status=None), timeout=60, interval=0.5,
                   what="the container to answer /healthz", details=lambda: _docker("logs", container).stdout[-3000:])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            assert response.read() == b'{"status":"ok"}'
        assert _docker("exec", container, "id", "-u").stdout.strip() != "0"
        # no app configured yet: the first-run page asks for the setup code the container printed, then
        # offers the registration
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"Set up aura-sicd" in response.read()
        code = _docker("exec", container, "cat", "/data/setup-code").stdout.strip()
        assert code and code in _docker("logs", container).stdout + _docker("logs", container).stderr
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        form = urllib.parse.urlencode({"code": code}).encode()
        with opener.open(f"http://127.0.0.1:{port}/setup", data=form, timeout=5) as response:  # redirected to /
            assert b"Register the GitHub App" in response.read()
    finally:
        _docker("rm", "-f", container)
