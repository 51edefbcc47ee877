"""bubblewrap commands run in a cgroup of their own with total memory, CPU and process limits where the
host allows (issue 18); where it does not, they run with the rlimits alone and say why once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox import cgroups
from sandbox.box import open_sandbox

from .conftest import settings_for, write_tree

pytestmark = pytest.mark.bwrap


def cgroup_dirs() -> list[Path]:
    own = cgroups._own_path("pids")
    base = cgroups.ROOT / "pids" / (own or "/").lstrip("/")
    return sorted(base.glob("aura-sandbox-*")) if base.is_dir() else []


def runs(cgroup: Path, argv: list[str]) -> bool:
    """Whether a process of `cgroup` runs `argv` (other sandboxes on the host have cgroups of their own)."""
    wanted = "\0".join(argv).encode() + b"\0"
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return False
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == wanted:
                return True
        except OSError:
            continue
    return False


async def test_a_command_runs_in_a_cgroup_with_the_sandbox_limits(bwrap_settings, tmp_path):
    if reason := cgroups.unavailable_reason(None):
        pytest.skip(f"this host gives the bot no cgroups: {reason}")
    settings = settings_for("bwrap", memory_mb=200, cpus=0.5, pids=48)
    repo = write_tree(tmp_path / "repo", {".github/aura-sicd.yml": "setup: []\n", "pyproject.toml": "[project]\nname='x'\n"})
    before = set(cgroup_dirs())
    async with open_sandbox(settings, repo) as box:
        command = ["sleep", "3.0417"]
        task = asyncio.ensure_future(box.run(command))
        seen: list[Path] = []
        for _ in range(100):
            seen = [d for d in cgroup_dirs() if d not in before and runs(d, command)]
            if seen:
                break
            await asyncio.sleep(0.05)
        [pids_dir] = seen
        name = pids_dir.name
        memory_dir = cgroups.ROOT / "memory" / cgroups._own_path("memory").lstrip("/") / name
        cpu_dir = cgroups.ROOT / "cpu" / cgroups._own_path("cpu").lstrip("/") / name
        assert (pids_dir / "pids.max").read_text().strip() == "48"
        assert int((memory_dir / "memory.limit_in_bytes").read_text()) == 200 * 1024 * 1024
        assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (pids_dir / "cgroup.procs").read_text().split()  # bubblewrap and the command are in it
        result = await task
        assert result.ok
    assert not pids_dir.exists() and not memory_dir.exists()  # removed with the command


def test_where_the_host_allows_no_cgroups_the_reason_is_given(tmp_path):
    parent = tmp_path / "not-a-cgroup"
    parent.mkdir()
    cgroups._reasons.pop(parent, None)
    assert "is not a cgroup v2 directory" in cgroups.unavailable_reason(parent)


async def test_the_memory_limit_is_a_total_across_processes(bwrap_settings, tmp_path):
    """Two processes of 150 MB each stay under the per-process rlimit (200 MB) but not under the 200 MB total."""
    if reason := cgroups.unavailable_reason(None):
        pytest.skip(f"this host gives the bot no cgroups: {reason}")
    settings = settings_for("bwrap", memory_mb=200)
    repo = write_tree(tmp_path / "repo", {".github/aura-sicd.yml": "setup: []\n", "pyproject.toml": "[project]\nname='x'\n"})
    hog = "python3 -c \"import time; b = b'x' * (150 * 2**20); time.sleep(3)\""
    async with open_sandbox(settings, repo) as box:
        alone = await box.run(["sh", "-c", hog])
        both = await box.run(["sh", "-c", f"{hog} & {hog} & wait"])
    assert alone.ok, alone.output
    assert both.oom, both
