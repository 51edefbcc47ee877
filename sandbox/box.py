"""`open_sandbox`: one job's sandbox, from backend choice and setup to the per-iteration checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sandbox.base import Backend, CommandResult
from sandbox.config import SandboxSettings
from sandbox.errors import SandboxError, SandboxUnavailable, SetupError
from sandbox.git_version import git_version
from sandbox.plans import Plan, detect_plan
from sandbox.reports import CheckReport
from sandbox.runner import run_plan
from sandbox.scrub import scrub, secret_values
from sandbox.selection import TestSelection, narrow_plan

logger = logging.getLogger("sandbox")

FIX_HINT = (
    "Fix it one of two ways: start a Docker engine and build the check image (`aura-sicd sandbox build`), "
    "or install bubblewrap (`apt-get install bubblewrap`)."
)


def backend_class(name: str) -> type[Backend]:
    if name == "docker":
        from sandbox.docker import DockerBackend

        return DockerBackend
    if name == "bwrap":
        from sandbox.bwrap import BwrapBackend

        return BwrapBackend
    if name == "local":
        from sandbox.local import LocalBackend

        return LocalBackend
    raise SandboxUnavailable(f"unknown sandbox backend {name!r} (choose auto, docker, bwrap or local)")


def choose_backend(settings: SandboxSettings, image: str | None = None) -> type[Backend]:
    """`auto` takes Docker when the engine answers and the image exists, else bubblewrap when it works
    here; never the local backend."""
    if settings.backend != "auto":
        cls = backend_class(settings.backend)
        reason = cls.unavailable_reason(settings, image)
        if reason:
            raise SandboxUnavailable(f"the {settings.backend} sandbox backend is not available: {reason}")
        return cls
    reasons = []
    for name in ("docker", "bwrap"):
        cls = backend_class(name)
        reason = cls.unavailable_reason(settings, image)
        if reason is None:
            if reasons:
                logger.info("sandbox backend auto: using %s (%s)", name, "; ".join(reasons))
            return cls
        reasons.append(f"{name}: {reason}")
    raise SandboxUnavailable("no sandbox backend is available (" + "; ".join(reasons) + "). " + FIX_HINT)


class Box:
    """A prepared, warm sandbox for one job."""

    def __init__(self, backend: Backend, plan: Plan, settings: SandboxSettings):
        self._backend = backend
        self.plan = plan
        self.settings = settings

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def check(self, workdir: Path, *, selection: TestSelection | None = None) -> CheckReport:
        """Copy `workdir` (without .git) into a fresh /workspace and run the plan; with a `selection`,
        its test checks narrowed to those tests where the plan allows (sandbox/selection.py), else the
        whole plan. The report's `selected_tests` says which it was."""
        workdir = Path(workdir)
        if not workdir.is_dir():
            raise SandboxError(f"{workdir} is not a directory")
        await self._backend.fresh_check_run()
        plan = (narrow_plan(self.plan, selection) if selection is not None else None) or self.plan
        await self._backend.replace_workspace(workdir)
        default_timeout = self.plan.check_timeout_s or self.settings.timeout_s
        return await run_plan(self._backend, plan, default_timeout=default_timeout)

    async def run(self, argv: list[str], *, timeout: float | None = None) -> CommandResult:
        """One command in the current workspace, without network."""
        if not argv:
            raise SandboxError("no command given")
        return await self._backend.exec(list(argv), timeout=timeout or self.settings.timeout_s)

    async def copy_out(self, dest: Path) -> None:
        """The current workspace's files into `dest` (regular files, directories, inner symlinks)."""
        await self._backend.copy_out(Path(dest))


@asynccontextmanager
async def open_sandbox(settings: SandboxSettings, repo_dir: Path, *, version: str | None = None) -> AsyncIterator[Box]:
    """Choose the backend, detect the plan, run the (cached) setup phase and start a warm session holding
    `repo_dir`'s files. Leaving the block removes everything, also when the body raises.

    `version` is the project's version for builds that read it from git tags; by default it comes from
    `repo_dir`'s HEAD when `repo_dir` is a git checkout. The setup phase runs once, from `repo_dir` as it
    is at open: a change to the dependency files during the job is not installed until the next job."""
    repo_dir = Path(repo_dir)
    if version is None:
        version = await asyncio.to_thread(git_version, repo_dir)
    plan = detect_plan(repo_dir, version=version)
    cls = await asyncio.to_thread(choose_backend, settings, plan.image)
    backend = cls(settings)
    try:
        try:
            await backend.prepare(plan, repo_dir)
        except SetupError as exc:  # its output is posted and stored: never with a passed-through secret in it
            values = secret_values(settings.setup_passthrough_env)
            raise SetupError(scrub(exc.message, values), scrub(exc.output, values)) from None
        await backend.start()
        await backend.replace_workspace(repo_dir)
        yield Box(backend, plan, settings)
    finally:
        await asyncio.shield(backend.close())
