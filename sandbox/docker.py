"""The Docker backend: one warm container per job, commands by exec.

The workspace moves in and out as tar archives (put_archive/get_archive), never by bind mount, so a remote
DOCKER_HOST works. The container has no network, a read-only root filesystem with a writable /workspace
volume and a /tmp tmpfs, no capabilities, no-new-privileges and memory, CPU and pids limits. Its idle main
process runs as a uid of its own, so a command's `kill -9 -1` (how a timeout kills everything the command
started) cannot stop the container. The setup phase runs in a separate container, also without network but
for the egress proxy's socket (sandbox/egress.py: package registries only), and its result is committed as
an image keyed by the dependency hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

from sandbox.base import (
    ENV_DIR,
    WORKSPACE,
    Backend,
    CommandResult,
    OutputBuffer,
    command_env,
    raise_for_setup,
    setup_commands,
)
from sandbox import liveness
from sandbox.config import SandboxSettings
from sandbox.docker_pool import SANDBOX_LABEL, choose_engine, docker_client, pool_unavailable_reason
from sandbox.egress import MOUNT_DIR, forwarder_command, open_egress, proxy_env, with_refusals
from sandbox.errors import SandboxError, SetupError
from sandbox.plans import Plan
from sandbox.workspace import extract_tar, make_tar

logger = logging.getLogger("sandbox.docker")

LABEL = SANDBOX_LABEL
LABEL_HOST = "aura-sicd.host"
LABEL_PID = "aura-sicd.pid"
LABEL_PIDNS = "aura-sicd.pidns"  # the pid namespace LABEL_PID is a pid of
ENV_IMAGE_REPO = "aura-sicd-env"
KEEPER = ["sleep", "infinity"]
KILL_GRACE_S = 10.0
HOST_DEADLINE_GRACE_S = 5.0

_reaped_hosts: set[str] = set()
_reap_lock = threading.Lock()


def engine_error(exc: Exception) -> str:
    return f"the Docker engine is not reachable ({type(exc).__name__}: {str(exc)[:200]})"


def engine_unreachable_reason(settings: SandboxSettings) -> str | None:
    try:
        client = docker_client(settings)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return engine_error(exc)
    return None


def reap_stale_containers(client) -> int:
    """Remove sandbox containers that a crashed process on this host left behind; returns how many."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels
        pid = labels.get(LABEL_PID, "")
        namespace = labels.get(LABEL_PIDNS)  # absent on containers made before it was recorded
        if labels.get(LABEL_HOST) != socket.gethostname() or not pid.isdigit() \
                or namespace not in (None, liveness.pid_namespace()) or liveness.pid_alive(int(pid)):
            continue  # another machine's, another pid namespace's (its pids mean nothing here), or alive
        logger.info("removing sandbox container %s left by stopped process %s", container.short_id, pid)
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
            removed += 1
    return removed


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, settings: SandboxSettings):
        super().__init__(settings)
        # with a pool of engines (sandbox/docker_pool.py), one is chosen when the sandbox is prepared
        self.client = None if settings.docker_hosts else docker_client(settings)
        self.image = settings.image
        self.container = None
        self.env: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.scratch_dirs: list[str] = []  # plan.env_scratch: writable tmpfs mounts in the read-only environment
        self.oom_kills = 0
        self._lock = asyncio.Lock()

    @classmethod
    def unavailable_reason(cls, settings: SandboxSettings, image: str | None = None) -> str | None:
        import docker.errors

        if image is None and settings.language_images:
            return engine_unreachable_reason(settings)  # the language's image is built on first use
        image = image or settings.image
        if settings.docker_hosts:
            return pool_unavailable_reason(settings, image)
        try:
            client = docker_client(settings)
        except Exception as exc:
            return engine_error(exc)
        try:
            client.ping()
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return f"the check image {image} does not exist (build it with `aura-sicd sandbox build`)"
        except Exception as exc:  # the SDK raises many kinds: no socket, refused, TLS, timeout
            return engine_error(exc)
        finally:
            client.close()
        return None

    # --- containers ---------------------------------------------------------------------------------------

    def _create(self, image: str, *, read_only: bool, egress: Path | None = None):
        """A container without network; `egress`: the egress proxy's socket directory, bind-mounted (setup)."""
        from docker.types import Mount

        s = self.settings
        mounts = [Mount(WORKSPACE, None, type="volume")]  # anonymous: removed with the container
        if egress is not None:
            mounts.append(Mount(MOUNT_DIR, str(egress), type="bind"))
        container = self.client.containers.create(
            image,
            command=KEEPER,
            user=f"{s.keeper_uid}:{s.keeper_uid}",
            init=True,  # reaps what commands leave behind
            detach=True,
            working_dir=WORKSPACE,
            environment=command_env(None),  # the image's PATH stays
            labels={LABEL: "1", LABEL_HOST: socket.gethostname(), LABEL_PID: str(os.getpid()),
                    LABEL_PIDNS: liveness.pid_namespace()},
            network_mode="none",  # the setup reaches registries only through the egress proxy
            read_only=read_only,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={s.tmp_mb}m,mode=1777",
                   **{f"{ENV_DIR}/{d}": f"rw,nosuid,nodev,size={s.tmp_mb}m,uid={s.sandbox_uid},gid={s.sandbox_uid}"
                      for d in (self.scratch_dirs if read_only else [])}},
            mounts=mounts,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=f"{s.memory_mb}m",
            memswap_limit=f"{s.memory_mb}m",
            nano_cpus=int(s.cpus * 1e9),
            pids_limit=s.pids,
            hostname="sandbox",
        )
        try:
            container.start()
        except BaseException:
            container.remove(force=True, v=True)
            raise
        return container

    def _reap_once(self) -> None:
        host = str(self.client.api.base_url)
        with _reap_lock:
            if host in _reaped_hosts:
                return
            _reaped_hosts.add(host)
        reap_stale_containers(self.client)

    # --- exec ---------------------------------------------------------------------------------------------

    def _exec_blocking(self, container_id: str, argv: list[str], env: dict[str, str], buffer: OutputBuffer,
                       user: str) -> int | None:
        api = self.client.api
        exec_id = api.exec_create(container_id, argv, user=user, environment=env, workdir=WORKSPACE)["Id"]
        for chunk in api.exec_start(exec_id, stream=True):
            buffer.feed(chunk)
        return api.exec_inspect(exec_id).get("ExitCode")

    async def _exec_in(self, container, argv: list[str], *, timeout: float, env: dict[str, str],
                       output_limit: int) -> CommandResult:
        buffer = OutputBuffer(output_limit)
        user = f"{self.settings.sandbox_uid}:{self.settings.sandbox_uid}"
        # coreutils' timeout kills the command's whole process group from inside, which works even when a
        # fork bomb holds every pid; the host-side deadline catches what left the group
        wrapped = ["timeout", "-s", "KILL", f"{timeout:.3f}", *argv]
        started = time.monotonic()
        task = asyncio.ensure_future(asyncio.to_thread(self._exec_blocking, container.id, wrapped, env, buffer, user))
        timed_out = False
        try:
            code = await asyncio.wait_for(asyncio.shield(task), timeout + HOST_DEADLINE_GRACE_S)
            timed_out = code == 137 and time.monotonic() - started >= timeout
        except (TimeoutError, asyncio.CancelledError) as exc:
            timed_out = isinstance(exc, TimeoutError)
            await self._kill_commands(container, task)
            if not timed_out:
                raise
        if timed_out:
            code = None
        output = buffer.text()
        return CommandResult(argv=argv, exit_code=code, output=output, duration_s=time.monotonic() - started,
                             timed_out=timed_out, truncated=buffer.truncated)

    async def _kill_commands(self, container, task: asyncio.Future) -> None:
        """Kill every process of the sandbox user; if the exec still hangs, remove the container."""
        user = f"{self.settings.sandbox_uid}:{self.settings.sandbox_uid}"
        api = self.client.api

        def kill_all() -> None:
            api.exec_start(api.exec_create(container.id, ["kill", "-9", "-1"], user=user)["Id"])

        for _ in range(3):  # an exec can fail while the pids limit is exhausted
            with contextlib.suppress(Exception):
                await asyncio.to_thread(kill_all)
            try:
                await asyncio.wait_for(asyncio.shield(task), KILL_GRACE_S / 3)
                return
            except TimeoutError:
                continue
            except Exception:
                return
        if not task.done():
            logger.warning("a timed-out command did not end; removing container %s", container.short_id)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True, v=True)
            if container is self.container:
                self.container = None

    async def _oom_killed(self, container) -> bool:
        """Did the kernel's OOM killer strike in this container since the last look?"""
        probe = ["sh", "-c", "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"]
        result = await self._exec_in(container, probe, timeout=30, env={}, output_limit=4000)
        counts = [int(n) for n in re.findall(r"^oom_kill (\d+)", result.output, re.M)]
        total = max(counts, default=0)
        killed = total > self.oom_kills
        self.oom_kills = total
        return killed

    async def exec(self, argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> CommandResult:
        async with self._lock:
            container = self._require()
            result = await self._exec_in(container, argv, timeout=timeout, env={**self.env, **(env or {})},
                                         output_limit=self.settings.output_limit)
            if result.exit_code == 137 and not result.timed_out and await self._oom_killed(container):
                result.oom = True
            return result

    def _require(self):
        if self.container is None:
            raise SandboxError("the Docker sandbox is not running (not started, or removed after a hung command)")
        return self.container

    # --- setup phase --------------------------------------------------------------------------------------

    async def prepare(self, plan: Plan, repo_dir: Path) -> None:
        base = plan.image or self.settings.image
        if plan.image is None and self.settings.language_images:
            from sandbox.cli import language_image

            base = await asyncio.to_thread(language_image, self.settings, plan.language, logger.info)
        if self.client is None:
            host = await asyncio.to_thread(choose_engine, self.settings, base)
            self.client = docker_client(self.settings, host)
        await asyncio.to_thread(self._reap_once)
        self.env = dict(plan.env)
        if not plan.setup:
            self.image = base
            return
        import docker.errors

        base_id = (await asyncio.to_thread(self.client.images.get, base)).id
        key = plan.dependency_hash(repo_dir, "docker", base_id)[:24]
        tag = f"{ENV_IMAGE_REPO}:{key}"
        self.links = {n: f"{ENV_DIR}/{n}" for n in plan.env_links}
        self.scratch_dirs = list(plan.env_scratch)
        try:
            await asyncio.to_thread(self.client.images.get, tag)
            self.image = tag
            return
        except docker.errors.ImageNotFound:
            pass
        logger.info("setting up %s in Docker (cache key %s)", repo_dir, key)
        async with contextlib.AsyncExitStack() as stack:
            proxy = None
            if self.settings.setup_network:
                proxy = await stack.enter_async_context(open_egress(self.settings, self._egress_base()))
            await self._set_up(plan, repo_dir, base, key, tag, proxy)

    def _egress_base(self) -> Path:
        """Where the egress proxy's socket goes: bind-mounted, so the engine must run on this machine."""
        base_url = str(self.client.api.base_url)
        if not base_url.startswith(("http+docker://localhost", "http+docker://localunixsocket", "http+unix://")):
            raise SandboxError(
                f"the setup phase reaches registries through a proxy socket bind-mounted into its container, which "
                f"a Docker engine on another machine ({base_url}) cannot mount. Use a local engine, the bubblewrap "
                "backend, or AURA_SANDBOX_SETUP_NETWORK=false with the dependencies in the check image.")
        path = self.settings.cache_dir / "egress"
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _set_up(self, plan: Plan, repo_dir: Path, base: str, key: str, tag: str, proxy) -> None:
        container = await asyncio.to_thread(self._create, base, read_only=False,
                                            egress=proxy.dir if proxy is not None else None)
        try:
            await asyncio.to_thread(self._put_workspace, container, repo_dir, {})
            deadline = time.monotonic() + self.settings.setup_timeout_s
            env = {**self.env, **self.settings.setup_env()}
            if proxy is not None:
                env.update(proxy_env())
                forwarder = await self._exec_in(container, forwarder_command("python3", ["true"]), timeout=30, env={},
                                                output_limit=4000)
                if not forwarder.ok:
                    raise SetupError("the setup's network forwarder did not start (the image needs python3)",
                                     forwarder.output)
            for command in setup_commands(plan):
                remaining = deadline - time.monotonic()
                result = await self._exec_in(container, command, timeout=max(remaining, 1), env=env,
                                             output_limit=self.settings.output_limit)
                raise_for_setup(with_refusals(result, proxy.refusals if proxy else []), self.settings.setup_timeout_s)
            # /workspace is a volume: the commit keeps the environment, not the repository's files
            await asyncio.to_thread(container.commit, repository=ENV_IMAGE_REPO, tag=key,
                                    changes=[f"LABEL {LABEL}.env=1", f"USER {self.settings.sandbox_uid}"])
            self.image = tag
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True, v=True)

    # --- session ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._reap_once)
        self.container = await asyncio.to_thread(self._create, self.image, read_only=True)

    def _put_workspace(self, container, source: Path, links: dict[str, str]) -> None:
        data = make_tar(source, self.settings.sandbox_uid, links)
        if not self.client.api.put_archive(container.id, WORKSPACE, data):
            raise SandboxError(f"copying the workspace into container {container.short_id} failed")

    async def replace_workspace(self, source: Path) -> None:
        async with self._lock:
            container = self._require()
            clean = await self._exec_in(container, ["find", WORKSPACE, "-mindepth", "1", "-delete"], timeout=120,
                                        env={}, output_limit=4000)
            if not clean.ok:
                raise SandboxError(f"clearing {WORKSPACE} failed: {clean.output.strip()[:500]}")
            await asyncio.to_thread(self._put_workspace, container, source, self.links)

    async def fresh_check_run(self) -> None:
        user = f"{self.settings.sandbox_uid}:{self.settings.sandbox_uid}"
        async with self._lock:
            container = self._require()

            def run(argv: list[str]) -> None:
                api = self.client.api
                api.exec_start(api.exec_create(container.id, argv, user=user)["Id"])

            await asyncio.to_thread(run, ["kill", "-9", "-1"])  # the idle main process has another uid
            scratch = [f"{ENV_DIR}/{d}" for d in self.scratch_dirs]  # writable mounts in the environment, too
            clean = await self._exec_in(container, ["find", "/tmp", *scratch, "-mindepth", "1", "-delete"],
                                        timeout=120, env={}, output_limit=4000)
            if not clean.ok:
                raise SandboxError(f"clearing /tmp failed: {clean.output.strip()[:500]}")

    async def read_file(self, path: str) -> bytes | None:
        async with self._lock:
            container = self._require()
            result = await self._exec_in(container, ["sh", "-c", 'test -f "$0" && ! test -L "$0" && cat "$0"', path],
                                         timeout=60, env={}, output_limit=64 * 1024 * 1024)
        return result.output.encode() if result.ok else None

    async def copy_out(self, dest: Path) -> None:
        async with self._lock:
            container = self._require()

            def fetch() -> None:
                stream, _ = self.client.api.get_archive(container.id, WORKSPACE)
                raw = io.BytesIO(b"".join(stream))
                dest.mkdir(parents=True, exist_ok=True)
                extract_tar(raw, dest, strip_top=WORKSPACE.strip("/"))

            await asyncio.to_thread(fetch)

    async def close(self) -> None:
        container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True, v=True)
        if self.client is not None:
            await asyncio.to_thread(self.client.close)
