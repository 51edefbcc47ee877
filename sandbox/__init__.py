"""Isolated execution of a repository's checks (Docker, with a bubblewrap fallback)."""

from sandbox.base import CommandResult
from sandbox.box import Box, choose_backend, open_sandbox
from sandbox.config import SandboxSettings
from sandbox.inventory import Outcome, TestInventory
from sandbox.errors import RepoConfigError, SandboxError, SandboxUnavailable, SetupError
from sandbox.plans import CheckSpec, Plan, detect_plan
from sandbox.repo_config import SandboxRepoConfig, load_sandbox_config
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts
from sandbox.selection import TestSelection

__all__ = [
    "Box", "CheckReport", "CheckResult", "CheckSpec", "CheckStatus", "CommandResult", "FailingTest", "Outcome", "Plan",
    "RepoConfigError", "SandboxError", "SandboxRepoConfig", "SandboxSettings", "SandboxUnavailable", "SetupError",
    "TestCounts", "TestInventory", "TestSelection", "choose_backend", "detect_plan", "load_sandbox_config", "open_sandbox",
]
