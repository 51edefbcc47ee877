"""The debugging backend: commands run on the host without any isolation. Never chosen by `auto`; every
use logs a warning. It skips the setup phase: the host must already have the repository's dependencies."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sandbox.base import Backend, CommandResult, command_env
from sandbox.config import SandboxSettings
from sandbox.errors import SandboxError
from sandbox.plans import Plan
from sandbox.process import run_process
from sandbox.workspace import clear_dir, copy_tree

logger = logging.getLogger("sandbox.local")
WARNING = "the local sandbox backend runs code WITHOUT isolation; use it only to debug on a throwaway machine"


class LocalBackend(Backend):
    name = "local"

    def __init__(self, settings: SandboxSettings):
        super().__init__(settings)
        self.root: Path | None = None
        self.env: dict[str, str] = {}

    @classmethod
    def unavailable_reason(cls, settings: SandboxSettings, image: str | None = None) -> str | None:
        return None

    async def prepare(self, plan: Plan, repo_dir: Path) -> None:
        logger.warning(WARNING)
        if plan.setup:
            logger.warning("local backend: skipping the setup phase %s", plan.setup)
        self.env = dict(plan.env)

    async def start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="aura-sicd-local-"))
        (self.root / "workspace").mkdir()

    def _workspace(self) -> Path:
        if self.root is None:
            raise SandboxError("the local session is not started")
        return self.root / "workspace"

    async def replace_workspace(self, source: Path) -> None:
        workspace = self._workspace()
        await asyncio.to_thread(lambda: (clear_dir(workspace), copy_tree(source, workspace)))

    async def exec(self, argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> CommandResult:
        logger.warning(WARNING)
        path = os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
        full_env = command_env(path, {"HOME": str(self.root)}, self.env, env)
        return await run_process(argv, timeout=timeout, output_limit=self.settings.output_limit, env=full_env,
                                 cwd=str(self._workspace()))

    async def fresh_check_run(self) -> None:
        """Nothing to do: this backend isolates nothing (its commands share the host's /tmp)."""

    async def read_file(self, path: str) -> bytes | None:
        host = Path(path) if not path.startswith("/workspace/") else self._workspace() / path[len("/workspace/"):]
        return host.read_bytes() if host.is_file() else None

    async def copy_out(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(copy_tree, self._workspace(), dest)

    async def close(self) -> None:
        if self.root is not None:
            await asyncio.to_thread(shutil.rmtree, self.root, True)
            self.root = None
