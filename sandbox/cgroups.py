"""Total memory, CPU and process limits for a bubblewrap command, through a cgroup of its own.

bubblewrap applies rlimits (sandbox/bwrap.py: prlimit), which bind each process but not the command's
processes together: twenty processes may each use the address-space limit, and nothing caps CPU. Where
the host lets the bot create cgroups, each command runs in a fresh one with `memory_mb`, `cpus` and `pids`
as totals; it is removed when the command ends, and a kill by the memory limit marks the result `oom`.

- cgroup v1 (a `memory`, `cpu` and `pids` hierarchy each): a child of the bot's own cgroup in each, when
  the bot may create it (root, or a delegated tree).
- cgroup v2: under `AURA_SANDBOX_CGROUP_PARENT`, a directory the operator delegated to the bot (e.g. a
  systemd unit with `Delegate=yes`, whose `cgroup.subtree_control` enables memory, cpu and pids). Without
  it, v2 limits are not applied: the bot's own cgroup cannot take children while it holds processes.

Elsewhere (`AURA_SANDBOX_BWRAP_CGROUPS=auto`, the default) commands run with the rlimits alone and the
reason is logged once; `require` makes the bubblewrap backend unavailable instead; `off` never tries.
The command joins its cgroup itself before bubblewrap starts (a shell that writes its pid into
`cgroup.procs`, which is handed to the uid bubblewrap runs as), so nothing it forks escapes the limits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("sandbox.cgroups")

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "pids")
CPU_PERIOD_US = 100_000
_logged: set[str] = set()


@dataclass
class Cgroup:
    """One command's cgroup: a directory per v1 controller, or one v2 directory."""

    dirs: list[Path]
    version: int
    procs: list[Path] = field(default_factory=list)

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` started by a shell that first moves itself into the cgroup."""
        script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *(str(p) for p in self.procs), "--", *argv]

    def oom_killed(self) -> bool:
        for directory in self.dirs:
            name = "memory.events" if self.version == 2 else "memory.oom_control"
            path = directory / name
            if path.is_file():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                        return True
        return False

    def remove(self) -> None:
        """Remove the directories; what is still in them (a process the kernel is still tearing down, or one
        that outlived a timeout) is killed first. Blocking: up to two seconds."""
        for directory in self.dirs:
            for attempt in range(40):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if attempt == 39:
                        logger.warning("could not remove the cgroup %s: %s", directory, exc)
                        break
                    self._kill_members(directory)
                    time.sleep(0.05)

    @staticmethod
    def _kill_members(directory: Path) -> None:
        try:
            members = (directory / "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in members:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def _own_path(controller: str | None) -> str | None:
    """The bot's cgroup path in the v1 hierarchy of `controller` (None: v2's)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (controller is None and names == "") or (controller is not None and controller in names.split(",")):
            return path
    return None


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def create(memory_mb: int, cpus: float, pids: int, *, owner: int | None, v2_parent: Path | None) -> Cgroup:
    """A fresh cgroup with these totals; OSError (with the reason) when the host does not allow one."""
    name = f"aura-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
    memory = str(memory_mb * 1024 * 1024)
    if v2_parent is not None:
        directory = v2_parent / name
        directory.mkdir()
        group = Cgroup([directory], 2, [directory / "cgroup.procs"])
        try:
            _write(directory / "memory.max", memory)
            if (directory / "memory.swap.max").exists():
                _write(directory / "memory.swap.max", "0")
            _write(directory / "cpu.max", f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            _write(directory / "pids.max", str(pids))
        except OSError:
            group.remove()
            raise
    else:
        dirs = []
        try:
            for controller in V1_CONTROLLERS:
                own = _own_path(controller)
                base = ROOT / controller
                if own is None or not base.is_dir():
                    raise OSError(f"no cgroup v1 {controller} hierarchy here")
                directory = base / own.lstrip("/") / name
                directory.mkdir()
                dirs.append(directory)
            group = Cgroup(dirs, 1, [d / "cgroup.procs" for d in dirs])
            memory_dir, cpu_dir, pids_dir = dirs
            _write(memory_dir / "memory.limit_in_bytes", memory)
            _write(cpu_dir / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(cpu_dir / "cpu.cfs_quota_us", str(int(cpus * CPU_PERIOD_US)))
            _write(pids_dir / "pids.max", str(pids))
        except OSError:
            Cgroup(dirs, 1).remove()
            raise
    if owner is not None:
        for procs in group.procs:
            os.chown(procs, owner, owner)
    return group


_reasons: dict[Path | None, str | None] = {}


def unavailable_reason(v2_parent: Path | None) -> str | None:
    """None when `create` can work here, else why not (one sentence); probed once per process."""
    if v2_parent not in _reasons:
        _reasons[v2_parent] = _probe(v2_parent)
    return _reasons[v2_parent]


def _probe(v2_parent: Path | None) -> str | None:
    if v2_parent is not None:
        if not (v2_parent / "cgroup.subtree_control").is_file():
            return f"AURA_SANDBOX_CGROUP_PARENT={v2_parent} is not a cgroup v2 directory"
        enabled = (v2_parent / "cgroup.subtree_control").read_text().split()
        missing = [c for c in V1_CONTROLLERS if c not in enabled]
        return f"{v2_parent} does not delegate the {', '.join(missing)} controller(s)" if missing else None
    if not all((ROOT / c).is_dir() for c in V1_CONTROLLERS):
        return ("the host has cgroup v2 only; set AURA_SANDBOX_CGROUP_PARENT to a cgroup delegated to the bot "
                "(systemd: Delegate=yes) to limit memory, CPU and processes per command")
    try:
        create(64, 1.0, 16, owner=None, v2_parent=None).remove()
    except OSError as exc:
        return f"the bot may not create cgroups here ({exc})"
    return None


def log_once(reason: str) -> None:
    if reason not in _logged:
        _logged.add(reason)
        logger.info("bubblewrap commands run without cgroup limits (the rlimits still apply): %s", reason)
