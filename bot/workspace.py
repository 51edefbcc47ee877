"""Git plumbing for the cycle: a worktree per job on its own branch, so the caller's checkout is never touched."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

BOT_NAME = "aura-sicd[bot]"
BOT_EMAIL = "aura-sicd[bot]@users.noreply.github.com"


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str):
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()[:2000]}")


def run_git(
    args: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 600.0,
) -> str:
    """Run git with a fixed identity and no prompts; return stdout. Extra `env` is added, never logged."""
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr)
    return proc.stdout
