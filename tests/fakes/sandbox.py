"""The fast tier's sandbox: the real sandbox's contract without its isolation.

`host_sandbox` opens a sandbox as `open_sandbox` does, on the local backend: the plan is detected from
the repository as the real sandbox detects it, the repository's own check commands (compileall, ruff,
pytest, ...) run as plain subprocesses in a scratch copy of the workspace, and their output goes through
the same runner and parsers into the same `CheckReport`. Left out are the isolation (bubblewrap, Docker)
and the setup phase (the repository's dependencies): the tools come from the test virtualenv, whose own
pytest plugins are kept out as the real sandbox's tools virtualenv has none.

Tests of the loop pass it as the `sandbox_opener` (Cycle, EpisodeRunner, JobServices, Scan), and their
settings name `HOST_SANDBOX`, so that nothing in the fast tier falls back to a real backend. The real
backends are left to the sandbox's own tests and a few end-to-end ones, marked `bwrap` or `docker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sandbox import Box, SandboxSettings, detect_plan
from sandbox.git_version import git_version
from sandbox.local import LocalBackend

HOST_SANDBOX = SandboxSettings(_env_file=None, backend="local")


@asynccontextmanager
async def host_sandbox(settings: SandboxSettings, repo_dir: Path) -> AsyncIterator[Box]:
    """A warm sandbox holding `repo_dir`'s files, with `settings`' limits (a `SandboxOpener`)."""
    repo_dir = Path(repo_dir)
    plan = detect_plan(repo_dir, version=await asyncio.to_thread(git_version, repo_dir))
    plan = plan.model_copy(update={"env": {**plan.env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}})
    backend = LocalBackend(settings)
    try:
        await backend.prepare(plan, repo_dir)
        await backend.start()
        await backend.replace_workspace(repo_dir)
        yield Box(backend, plan, settings)
    finally:
        await backend.close()
