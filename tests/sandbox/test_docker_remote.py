"""Sandboxes on other Docker engines: `DOCKER_HOST=tcp://…` and a pool (`AURA_SANDBOX_DOCKER_HOSTS`).

Two extra `dockerd`s listen on TCP sockets on loopback (own data and exec roots, a bridge of their own, no
iptables), each given a tiny image built from this machine's /bin/sh and coreutils (a few MB, imported,
nothing pulled). Needs root and dockerd; skipped without them, except with AURA_REQUIRE_SANDBOXES=1.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.config import SandboxSettings
from sandbox.docker import DockerBackend
from sandbox.docker_pool import choose_engine, engine_load, survey
from sandbox.errors import SandboxError
from sandbox.plans import CheckSpec, Plan
from tests.backends import skip_or_fail
from tests.e2e.servers import free_port
from tests.sandbox.conftest import write_tree
from tests.wait import still_running, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "aura-sicd-remote-test:tiny"
TOOLS = ["/bin/sh", "/usr/bin/timeout", "/usr/bin/sleep", "/usr/bin/cat", "/usr/bin/find", "/usr/bin/test",
         "/usr/bin/echo", "/usr/bin/id", "/usr/bin/hostname", "/usr/bin/kill"]


def tiny_image() -> bytes:
    """A root filesystem tar with the commands the Docker backend runs and the libraries they load
    (symbolic links followed, so the image does not depend on this machine's /usr merge)."""
    files: dict[str, str] = {}  # path in the image → file here
    for tool in TOOLS:
        if not os.path.exists(tool):
            continue
        name = Path(tool).name
        files[f"usr/bin/{name}"] = files[f"bin/{name}"] = tool
        ldd = subprocess.run(["ldd", tool], capture_output=True, text=True, check=False).stdout
        files.update({p.lstrip("/"): p for p in ldd.split() if p.startswith("/") and os.path.exists(p)})
    directories = {str(parent) for path in files for parent in Path(path).parents if str(parent) != "."}
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", dereference=True) as tar:
        for directory in sorted(directories | {"workspace", "tmp"}):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory in ("workspace", "tmp") else 0o755
            tar.addfile(info)
        for path, source in sorted(files.items()):
            info = tar.gettarinfo(source, arcname=path)
            info.mode |= 0o555
            with open(source, "rb") as fh:
                tar.addfile(info, fh)
    return data.getvalue()


class Engine:
    """A dockerd of its own on tcp://127.0.0.1:<port>, removed with everything it stored."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.bridge = ""

    def start(self) -> None:
        self.root.mkdir(parents=True)
        # a bridge of its own: with `--bridge none` a second dockerd deletes the host's docker0, and the
        # main engine's containers lose their network
        self.bridge = f"aura-tb{self.port % 100000}"
        subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True, capture_output=True)
        log = open(self.root / "dockerd.log", "w")  # noqa: SIM115 (handed to the child)
        self.process = subprocess.Popen(
            ["dockerd", "--host", self.host, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"),
             "--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        def log() -> str:
            return (self.root / "dockerd.log").read_text()[-2000:]

        def ready() -> bool:
            still_running(self.process, f"dockerd on {self.host}", log)
            return subprocess.run(["docker", "-H", self.host, "info"], capture_output=True, check=False).returncode == 0

        wait_until(ready, timeout=60, interval=0.5, what=f"dockerd on {self.host} to start", details=log)

    def load(self, rootfs: bytes) -> None:
        subprocess.run(["docker", "-H", self.host, "import", "-", IMAGE], input=rootfs, check=True, capture_output=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(["ip", "link", "delete", self.bridge], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Iterator[list[Engine]]:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("dockerd", "docker", "ip")):
        skip_or_fail("docker", "a second Docker engine needs root, dockerd, the docker CLI and ip (iproute2)")
    started = [Engine(Path(f"/tmp/aura-dockerd-{os.getpid()}-{n}")) for n in range(2)]
    try:
        rootfs = tiny_image()
        for engine in started:
            engine.start()
            engine.load(rootfs)
        yield started
    finally:
        for engine in started:
            engine.stop()


def settings(**overrides) -> SandboxSettings:
    return SandboxSettings(**{"_env_file": None, "backend": "docker", "image": IMAGE, "memory_mb": 128, "pids": 64,
                              **overrides})


PLAN = Plan(language="python", checks=[CheckSpec(name="noop", command=["true"])], image=IMAGE)


async def run_in(backend: DockerBackend, repo: Path) -> str:
    await backend.prepare(PLAN, repo)
    await backend.start()
    await backend.replace_workspace(repo)
    result = await backend.exec(["sh", "-c", "cat /workspace/hello.txt; hostname"], timeout=30)
    assert result.ok, result.output
    return result.output


async def test_docker_host_on_tcp_runs_the_sandbox_there(engines, tmp_path: Path, monkeypatch):
    remote = engines[0]
    repo = write_tree(tmp_path / "repo", {"hello.txt": "from the workspace\n"})
    monkeypatch.setenv("DOCKER_HOST", remote.host)
    assert DockerBackend.unavailable_reason(settings()) is None
    backend = DockerBackend(settings())
    try:
        assert await run_in(backend, repo) == "from the workspace\nsandbox\n"
        assert engine_load(settings(), remote.host) == 1  # the container is on the TCP engine
        out = tmp_path / "out"
        await backend.copy_out(out)
        assert (out / "hello.txt").read_text() == "from the workspace\n"
    finally:
        await backend.close()
    assert engine_load(settings(), remote.host) == 0


async def test_a_pool_spreads_sandboxes_to_the_least_loaded_engine_and_skips_dead_ones(engines, tmp_path: Path,
                                                                                      monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    dead = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    pool = settings(docker_hosts=[engines[0].host, dead, engines[1].host])
    repo = write_tree(tmp_path / "repo", {"hello.txt": "hi\n"})
    assert DockerBackend.unavailable_reason(pool) is None
    backends = [DockerBackend(pool) for _ in range(4)]
    try:
        for backend in backends:  # one after another: each sees the containers of those before it
            await run_in(backend, repo)
        loads = survey(pool, IMAGE)
        assert loads[engines[0].host] == 2 and loads[engines[1].host] == 2
        assert isinstance(loads[dead], str)  # left out, with the reason
    finally:
        for backend in backends:
            await backend.close()
    assert choose_engine(pool, IMAGE) in (engines[0].host, engines[1].host)


async def test_a_pool_without_a_usable_engine_says_why_for_each(engines, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    pool = settings(docker_hosts=[engines[0].host, f"tcp://127.0.0.1:{free_port()}"], image="no-such-image:1")
    reason = DockerBackend.unavailable_reason(pool)
    assert reason is not None and "no-such-image:1 does not exist there" in reason and "127.0.0.1" in reason
    with pytest.raises(SandboxError, match="no Docker engine of the pool can take a sandbox"):
        await DockerBackend(pool).prepare(PLAN.model_copy(update={"image": "no-such-image:1"}), Path("."))
