"""What every backend offers: one warm session per job, commands with a hard wall-clock timeout, and
bounded output."""

from __future__ import annotations

import logging
import shlex
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from sandbox.config import SandboxSettings
from sandbox.errors import SetupError
from sandbox.plans import Plan

logger = logging.getLogger("sandbox")

WORKSPACE = "/workspace"  # the repository's files, writable
ENV_DIR = "/opt/aura-env"  # what the setup phase produced besides the Python packages (node_modules, Go modules)
SCRATCH = "/tmp"

# What a hosted CI runner gives a job: `CI=true`, a UTF-8 locale, a writable home, and no terminal settings
# forced either way (a project's tests may check that colours are on by default under CI); the output
# parsers strip colour codes. Nothing of the host's environment is passed on.
CI_ENV = {
    "CI": "true",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def command_env(path: str | None, *layers: dict[str, str] | None) -> dict[str, str]:
    """The environment of a command in the sandbox, the one place it is built: the CI runner's variables,
    PATH, then `layers` in order (the plan's variables, the workflow's for its test step, the check's own)."""
    env = dict(CI_ENV)
    if path is not None:
        env["PATH"] = path
    for layer in layers:
        env.update(layer or {})
    return env


OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "JavaScript heap out of memory",
               "fatal error: runtime: out of memory")


class CommandResult(BaseModel):
    argv: list[str]
    exit_code: int | None  # None when the command was killed before it reported one
    output: str = ""  # stdout and stderr interleaved, trimmed with a marker where cut
    duration_s: float = 0.0
    timed_out: bool = False
    oom: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom


class OutputBuffer:
    """Keeps the head and the tail of a stream within `limit` characters and counts what was cut."""

    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.cut = 0

    def feed(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_size += len(data)
        while self.tail_size - len(self.tail[0]) >= self.tail_limit:
            self.cut += len(self.tail[0])
            self.tail_size -= len(self.tail.popleft())
        extra = self.tail_size - self.tail_limit
        if extra > 0:
            self.tail[0] = self.tail[0][extra:]
            self.tail_size -= extra
            self.cut += extra

    @property
    def truncated(self) -> bool:
        return self.cut > 0

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = b"".join(self.tail).decode("utf-8", "replace")
        if not self.cut:
            return head + tail
        return f"{head}\n[... {self.cut} bytes cut by aura-sicd ...]\n{tail}"


def trim(text: str, limit: int) -> str:
    """Trim a string the way OutputBuffer trims a stream."""
    if len(text) <= limit:
        return text
    buffer = OutputBuffer(limit)
    buffer.feed(text.encode())
    return buffer.text()


def setup_commands(plan: Plan) -> list[list[str]]:
    """The plan's setup (with the plan's setup-only variables), then what moves the environment's parts of
    the workspace (node_modules) to ENV_DIR, from where every check's workspace links to them."""
    assignments = [f"{key}={value}" for key, value in sorted(plan.setup_env.items())]
    commands = [["env", *assignments, *command] if assignments else list(command) for command in plan.setup]
    moves = " ; ".join(f"if [ -e {WORKSPACE}/{n} ]; then mkdir -p {ENV_DIR} && mv {WORKSPACE}/{n} {ENV_DIR}/{n}; fi"
                       for n in plan.env_links)
    return [*commands, ["sh", "-c", moves]] if moves else commands


def raise_for_setup(result: CommandResult, timeout_s: float) -> None:
    if result.timed_out:
        raise SetupError(f"the setup phase timed out after {timeout_s:.0f} s", trim(result.output, 4000))
    if not result.ok:
        raise SetupError(f"the setup command {shlex.join(result.argv)} failed (exit {result.exit_code})",
                         trim(result.output, 4000))


def looks_out_of_memory(exit_code: int | None, output: str) -> bool:
    """Under an address-space limit, allocation fails instead of the kernel killing the process."""
    return exit_code not in (0, None) and any(marker in output[-4000:] for marker in OOM_MARKERS)


class Backend(ABC):
    """One job's sandbox. Lifecycle: prepare (setup phase, cached) → start → commands... → close."""

    name: ClassVar[str]

    def __init__(self, settings: SandboxSettings):
        self.settings = settings

    @classmethod
    @abstractmethod
    def unavailable_reason(cls, settings: SandboxSettings, image: str | None = None) -> str | None:
        """None when the backend can run here, else why not (one sentence)."""

    @abstractmethod
    async def prepare(self, plan: Plan, repo_dir: Path) -> None:
        """Run the plan's setup phase (with network) unless its cached result exists."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def replace_workspace(self, source: Path) -> None:
        """Make /workspace hold exactly `source`'s files (without .git)."""

    @abstractmethod
    async def exec(
        self, argv: list[str], *, timeout: float, env: dict[str, str] | None = None
    ) -> CommandResult: ...

    @abstractmethod
    async def fresh_check_run(self) -> None:
        """Before each check run: an empty /tmp, and no process left that an earlier run started, so
        nothing one run plants (a plugin, a sitecustomize.py, a daemon) reaches the next."""

    @abstractmethod
    async def read_file(self, path: str) -> bytes | None:
        """A file the last command wrote under /tmp or /workspace, or None."""

    @abstractmethod
    async def copy_out(self, dest: Path) -> None:
        """Copy /workspace out to `dest`: regular files, directories and inner symlinks only."""

    @abstractmethod
    async def close(self) -> None: ...
