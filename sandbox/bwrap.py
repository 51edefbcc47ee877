"""The bubblewrap backend, for machines without Docker.

Every namespace is unshared, the network too: checks have none, and the setup phase reaches package registries
only through the egress proxy (sandbox/egress.py). System directories are bound read-only, /workspace
and /tmp are per-session host directories, and rlimits (processes, data size, file size) apply through
prlimit. The check tools live in a virtualenv under the cache directory built once from PyPI, used as it is
by a repository with nothing to install; a repository's dependencies go into a virtualenv per dependency
hash that gets the tools installed first and the project after them (so the project's modules always win).
When the bot runs as root, bubblewrap runs as an unprivileged uid so that rlimits bind and root-owned
host files stay closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

from sandbox import cgroups
from sandbox.base import (
    ENV_DIR,
    WORKSPACE,
    Backend,
    CommandResult,
    command_env,
    raise_for_setup,
    setup_commands,
    trim,
)
from sandbox import liveness
from sandbox.config import SandboxSettings
from sandbox.egress import MOUNT_DIR, forwarder_command, open_egress, proxy_env, with_refusals
from sandbox.errors import SandboxError, SetupError
from sandbox.plans import Plan, go_required
from sandbox.process import run_process
from sandbox.python_env import PIP_INSTALL
from sandbox.workspace import clear_dir, copy_tree

logger = logging.getLogger("sandbox.bwrap")
ENV_LAYOUT = "tools-in-project-venv"

TOOLS_DIR = "/opt/aura-tools"
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
# the parts of /etc that programs need; the rest (shadow, ssh keys, the bot's config) stays out
ETC_ENTRIES = [
    "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates",
    "ca-certificates.conf", "localtime", "nsswitch.conf", "hosts", "resolv.conf", "host.conf", "gai.conf",
    "protocols", "services", "mime.types", "python3", "npmrc", "gitconfig",
    "maven", "php",  # Maven's m2.conf and settings; php.ini and the extensions' conf.d
] + [f"python3.{minor}" for minor in range(8, 20)] + [f"java-{v}-openjdk" for v in (11, 17, 21, 25)]  # JDK conf links

_probe_cache: dict[tuple[str, int | None], str | None] = {}


@functools.cache
def _python_version(interpreter: str) -> str:
    return subprocess.run([interpreter, "-c", "import sys; print(sys.version)"],
                          capture_output=True, text=True, timeout=60).stdout.strip()


@functools.cache
def _host_go_version() -> str | None:
    try:
        proc = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"})  # as in the sandbox
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip().removeprefix("go") or None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def check_host_go(repo_dir: Path) -> None:
    """A setup error naming both versions when the host's Go (which bubblewrap runs) is older than go.mod's
    `go` line: go 1.19 reads `go 1.21.0` as an invalid version, and GOTOOLCHAIN=local forbids a download."""
    required = go_required(repo_dir)
    have = _host_go_version()
    if required is None or have is None or _version_key(have) >= _version_key(required):
        return
    raise SetupError(f"go.mod asks for go {required} or newer, and this host's Go, which the bubblewrap sandbox "
                     f"runs, is go {have}: install a newer Go on the host (Debian 12: golang-1.23-go from "
                     "bookworm-backports, linked as /usr/local/bin/go) or use the Docker check image, "
                     "which has Go 1.23")


def _rmtree(path: Path) -> None:
    def retry(func, p, exc):  # a directory the sandbox made read-only
        if issubclass(exc[0], FileNotFoundError):
            return  # another process reaping the same stale session got there first
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)

    if path.exists():
        shutil.rmtree(path, onerror=retry)


class BwrapBackend(Backend):
    name = "bwrap"

    def __init__(self, settings: SandboxSettings):
        super().__init__(settings)
        self.host_uid = settings.bwrap_host_uid if os.geteuid() == 0 else None
        self.cache = settings.cache_dir
        self.tools_dir: Path | None = None
        self.env_dir: Path | None = None
        self.python_env = False  # a per-repository virtualenv exists under env_dir/venv
        self.links: dict[str, str] = {}
        self.scratch_dirs: list[str] = []  # plan.env_scratch that the environment has
        self.env: dict[str, str] = {}
        self.session_dir: Path | None = None
        self._claim: int | None = None  # liveness.claim of session_dir

    # --- availability -------------------------------------------------------------------------------------

    @classmethod
    def unavailable_reason(cls, settings: SandboxSettings, image: str | None = None) -> str | None:
        path = shutil.which(settings.bwrap_path)
        if path is None:
            return f"bubblewrap is not installed ({settings.bwrap_path!r} not found on PATH)"
        host_uid = settings.bwrap_host_uid if os.geteuid() == 0 else None
        key = (path, host_uid)
        if key not in _probe_cache:
            extra = {"user": host_uid, "group": host_uid, "extra_groups": []} if host_uid is not None else {}
            try:
                proc = subprocess.run(
                    [path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                     "--dev", "/dev", "--", "true"],
                    capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}, **extra,
                )
                _probe_cache[key] = None if proc.returncode == 0 else (
                    f"bubblewrap cannot create namespaces here: {proc.stderr.strip()[:300]}"
                    " (unprivileged user namespaces may be disabled)"
                )
            except (OSError, subprocess.SubprocessError) as exc:
                _probe_cache[key] = f"bubblewrap failed to start: {exc}"
        if _probe_cache[key] is None and not settings.bwrap_python.is_file():
            return f"the interpreter for the bubblewrap tools, {settings.bwrap_python}, does not exist"
        if _probe_cache[key] is None and settings.bwrap_cgroups == "require":
            if reason := cgroups.unavailable_reason(settings.cgroup_parent):
                return f"AURA_SANDBOX_BWRAP_CGROUPS=require, but {reason}"
        return _probe_cache[key]

    # --- host directories ---------------------------------------------------------------------------------

    def _own(self, path: Path) -> None:
        if self.host_uid is not None:
            os.chown(path, self.host_uid, self.host_uid)

    def _make_cache_dir(self, path: Path) -> Path:
        # every level must be traversable by the uid bubblewrap runs as
        for parent in reversed([path, *path.parents]):
            if not parent.exists():
                parent.mkdir(mode=0o755)
        return path

    def _new_dir(self, path: Path, *, exist_ok: bool = False) -> Path:
        path.mkdir(mode=0o700, exist_ok=exist_ok)
        self._own(path)
        return path

    def _reap_stale_sessions(self, sessions: Path) -> None:
        for child in sessions.iterdir():
            pid = child.name.split("-", 1)[0]
            if liveness.stale(child, int(pid) if pid.isdigit() else None):
                logger.info("removing the session directory %s left by a stopped process", child)
                _rmtree(child)

    # --- bubblewrap command line --------------------------------------------------------------------------

    def _bwrap_argv(self, argv: list[str], *, workspace: Path, scratch: Path, egress: Path | None,
                    env_writable: bool, tools_writable: bool, env: dict[str, str]) -> list[str]:
        s = self.settings
        args = [shutil.which(s.bwrap_path) or s.bwrap_path, "--unshare-all"]  # the network too, always
        args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
                 "--uid", str(s.sandbox_uid), "--gid", str(s.sandbox_uid)]
        for directory in SYSTEM_DIRS:
            if os.path.islink(directory):
                args += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                args += ["--ro-bind", directory, directory]
        for name in ETC_ENTRIES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--bind", str(scratch), "/tmp",
                 "--bind", str(workspace), WORKSPACE]
        if self.tools_dir is not None:
            args += ["--bind" if tools_writable else "--ro-bind", str(self.tools_dir), TOOLS_DIR]
        if self.env_dir is not None:
            args += ["--bind" if env_writable else "--ro-bind", str(self.env_dir), ENV_DIR]
            for i, name in enumerate([] if env_writable else self.scratch_dirs):  # under the session's /tmp
                args += ["--bind", str(self._new_dir(scratch / f".aura-env-scratch-{i}", exist_ok=True)),
                         f"{ENV_DIR}/{name}"]
        if egress is not None:  # the egress proxy's socket (sandbox/egress.py), the setup's only way out
            args += ["--bind", str(egress), MOUNT_DIR]
        args += ["--remount-ro", "/", "--chdir", WORKSPACE, "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        mem = s.memory_mb * 1024 * 1024
        args += ["--", "/usr/bin/prlimit", f"--nproc={s.pids}", f"--data={mem}", f"--fsize={mem}",
                 "--nofile=4096", "--core=0", "--", *argv]
        return args

    def _path(self) -> str:
        parts = []
        if self.python_env:
            parts.append(f"{ENV_DIR}/venv/bin")
        if self.tools_dir is not None:
            parts.append(f"{TOOLS_DIR}/bin")
        return ":".join([*parts, "/usr/local/bin", "/usr/bin", "/bin"])

    async def _run(self, argv: list[str], *, timeout: float, workspace: Path, scratch: Path, network: bool = False,
                   env_writable: bool = False, tools_writable: bool = False, env: dict[str, str] | None = None,
                   ) -> CommandResult:
        full_env = command_env(self._path(), self.env, env)
        if not network:
            bwrap_argv = self._bwrap_argv(argv, workspace=workspace, scratch=scratch, egress=None,
                                          env_writable=env_writable, tools_writable=tools_writable, env=full_env)
            return await self._spawn(bwrap_argv, argv, timeout)
        async with open_egress(self.settings, self._make_cache_dir(self.cache / "egress")) as proxy:
            wrapped = forwarder_command(str(self.settings.bwrap_python), argv)
            bwrap_argv = self._bwrap_argv(wrapped, workspace=workspace, scratch=scratch, egress=proxy.dir,
                                          env_writable=env_writable, tools_writable=tools_writable,
                                          env={**full_env, **proxy_env()})
            result = await self._spawn(bwrap_argv, argv, timeout)
        return with_refusals(result, proxy.refusals)

    async def _spawn(self, bwrap_argv: list[str], shown: list[str], timeout: float) -> CommandResult:
        """bubblewrap as the unprivileged host uid, in a cgroup of its own where the host allows one."""
        group = await asyncio.to_thread(self._cgroup)
        try:
            result = await run_process(group.wrap(bwrap_argv) if group else bwrap_argv, shown_argv=shown,
                                       timeout=timeout, output_limit=self.settings.output_limit,
                                       env={"PATH": "/usr/bin:/bin"}, user=self.host_uid)
        finally:
            oom = group is not None and await asyncio.to_thread(group.oom_killed)
            if group is not None:
                await asyncio.to_thread(group.remove)
        return result.model_copy(update={"oom": True}) if oom and not result.timed_out else result

    def _cgroup(self) -> cgroups.Cgroup | None:
        s = self.settings
        if s.bwrap_cgroups == "off":
            return None
        if reason := cgroups.unavailable_reason(s.cgroup_parent):
            cgroups.log_once(reason)  # `require` never gets here: the backend is unavailable then
            return None
        return cgroups.create(s.memory_mb, s.cpus, s.pids, owner=self.host_uid, v2_parent=s.cgroup_parent)

    # --- the setup phase ----------------------------------------------------------------------------------

    async def _build_cached(self, kind: str, key: str, build) -> Path:
        """Build cache_dir/kind/key once (under a file lock); a failed build leaves nothing behind."""
        parent = self._make_cache_dir(self.cache / kind)
        target = parent / key
        ready = parent / f"{key}.ready"
        if ready.exists():
            return target
        lock_path = parent / f"{key}.lock"
        with open(lock_path, "w") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            if ready.exists():
                return target
            _rmtree(target)
            self._make_cache_dir(target)
            self._own(target)
            try:
                await build(target)
            except BaseException:
                _rmtree(target)
                raise
            ready.touch()
        return target

    async def _one_off(self, argv: list[str], *, timeout: float, network: bool, source: Path | None,
                       env_writable: bool = False, tools_writable: bool = False, env: dict[str, str] | None = None,
                       ) -> CommandResult:
        """A command in a throwaway workspace (a copy of `source`), for the setup phase."""
        sessions = self._make_cache_dir(self.cache / "sessions")
        base = self._new_dir(sessions / f"{os.getpid()}-setup-{secrets.token_hex(4)}")
        claim = liveness.claim(base)
        try:
            workspace, scratch = self._new_dir(base / "workspace"), self._new_dir(base / "tmp")
            if source is not None:
                await asyncio.to_thread(copy_tree, source, workspace, owner=self.host_uid)
            return await self._run(argv, timeout=timeout, workspace=workspace, scratch=scratch, network=network,
                                   env_writable=env_writable, tools_writable=tools_writable, env=env)
        finally:
            await asyncio.to_thread(_rmtree, base)
            liveness.release(claim)

    async def _ensure_tools(self) -> Path:
        s = self.settings
        version = _python_version(str(s.bwrap_python))
        key = hashlib.sha256(f"{s.bwrap_python}\0{version}\0{sorted(s.tools)}".encode()).hexdigest()[:16]

        async def build(target: Path) -> None:
            logger.info("building the sandbox tools (%s) in %s", ", ".join(s.tools), target)
            self.tools_dir = target
            script = f'"$0" -m venv {TOOLS_DIR} && {TOOLS_DIR}/bin/python -m pip install --no-input -q "$@"'
            result = await self._one_off(["sh", "-c", script, str(s.bwrap_python), *s.tools],
                                         timeout=s.setup_timeout_s, network=s.setup_network, source=None,
                                         tools_writable=True, env=self.settings.setup_env())
            if not result.ok:
                raise SetupError("installing the check tools into the bubblewrap environment failed",
                                 trim(result.output, 4000))

        return await self._build_cached("tools", key, build)

    async def prepare(self, plan: Plan, repo_dir: Path) -> None:
        if plan.language == "go":
            check_host_go(repo_dir)
        self.tools_dir = await self._ensure_tools() if plan.language == "python" else None
        self.env = dict(plan.env)
        if not plan.setup:
            return
        # ENV_LAYOUT: environments built before the tools went into the project's own venv are never reused
        key = plan.dependency_hash(repo_dir, "bwrap", str(self.tools_dir), ENV_LAYOUT)[:24]
        python = plan.language == "python"

        async def build(target: Path) -> None:
            self.env_dir = target
            commands = setup_commands(plan)
            if python:
                # a virtualenv of its own with the check tools installed first and the project after them, as
                # tox does: the project's pins, and the project itself when a tool depends on it (pluggy,
                # iniconfig, mypy_extensions...), replace the tools' copies instead of being shadowed by them
                self.python_env = True
                commands[:0] = [["sh", "-c", f'"$0" -m venv {ENV_DIR}/venv', str(self.settings.bwrap_python)],
                                [*PIP_INSTALL, *self.settings.tools]]
            script = " && ".join(shlex.join(c) for c in commands)
            logger.info("setting up %s (cache key %s)", repo_dir, key)
            result = await self._one_off(["sh", "-c", script], timeout=self.settings.setup_timeout_s,
                                         network=self.settings.setup_network, source=repo_dir, env_writable=True,
                                         env=self.settings.setup_env())
            raise_for_setup(result, self.settings.setup_timeout_s)

        self.env_dir = await self._build_cached("envs", key, build)
        self.python_env = python and (self.env_dir / "venv").is_dir()
        self.links = {n: f"{ENV_DIR}/{n}" for n in plan.env_links if (self.env_dir / n).exists()}
        self.scratch_dirs = [d for d in plan.env_scratch if (self.env_dir / d).is_dir()]

    # --- the session --------------------------------------------------------------------------------------

    async def start(self) -> None:
        sessions = self._make_cache_dir(self.cache / "sessions")
        await asyncio.to_thread(self._reap_stale_sessions, sessions)
        self.session_dir = self._new_dir(sessions / f"{os.getpid()}-{secrets.token_hex(6)}")
        self._claim = liveness.claim(self.session_dir)
        self._new_dir(self.session_dir / "workspace")
        self._new_dir(self.session_dir / "tmp")

    def _session_path(self, name: str) -> Path:
        if self.session_dir is None:
            raise SandboxError("the bubblewrap session is not started")
        return self.session_dir / name

    async def replace_workspace(self, source: Path) -> None:
        workspace = self._session_path("workspace")

        def replace() -> None:
            clear_dir(workspace)
            copy_tree(source, workspace, owner=self.host_uid, links=self.links)

        await asyncio.to_thread(replace)

    async def fresh_check_run(self) -> None:
        # every command runs in a pid namespace of its own, which ends with it: no process to stop here
        scratch = self._session_path("tmp")
        await asyncio.to_thread(_rmtree, scratch)
        self._new_dir(scratch)

    async def exec(self, argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> CommandResult:
        return await self._run(argv, timeout=timeout, workspace=self._session_path("workspace"),
                               scratch=self._session_path("tmp"), env=env)

    async def read_file(self, path: str) -> bytes | None:
        for prefix, name in (("/tmp/", "tmp"), (WORKSPACE + "/", "workspace")):
            if path.startswith(prefix):
                root = self._session_path(name).resolve()
                host = (root / path[len(prefix):]).resolve()
                # the sandbox may have planted a symlink: never read outside its own directories
                if not host.is_relative_to(root) or not host.is_file():
                    return None
                with open(host, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
                    return fh.read(64 * 1024 * 1024)
        raise ValueError(f"read_file reads only under /tmp or {WORKSPACE}, not {path}")

    async def copy_out(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(copy_tree, self._session_path("workspace"), dest)

    async def close(self) -> None:
        if self.session_dir is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_rmtree, self.session_dir)
            self.session_dir = None
        liveness.release(self._claim)
        self._claim = None
