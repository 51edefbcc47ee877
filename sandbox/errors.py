"""Errors of the sandbox package. Each message says what went wrong and how to fix it."""

from __future__ import annotations


class SandboxError(Exception):
    """Base class: the sandbox could not do what was asked."""


class SandboxUnavailable(SandboxError):
    """No usable backend (Docker unreachable, image missing, bubblewrap not installed...)."""


class RepoConfigError(SandboxError):
    """The repository's `.github/aura-sicd.yml` is invalid."""


class SetupError(SandboxError):
    """The repository's setup command failed; `output` holds its trimmed output."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(f"{message}\n{output}".rstrip())
        self.message = message
        self.output = output
