"""The sandbox's part of a repository's `.github/aura-sicd.yml`: `setup`, `checks`, `image` and the time
limits `test_timeout_s` and `check_timeout_s`.

Other top-level keys belong to the bot and are ignored here. Commands are a string (run by `sh -c`) or a
list of arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.errors import RepoConfigError

CONFIG_PATH = ".github/aura-sicd.yml"

Command = str | list[str]


class RepoCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    run: Command
    required: bool = True
    timeout_s: float | None = Field(None, gt=0)
    # how to read per-test counts from the output: pytest (JUnit report), go (`go test -json`), node (TAP,
    # jest, mocha, vitest summaries); default: pytest when the command mentions pytest, else none
    parser: Literal["pytest", "go", "node", "cargo", "surefire", "phpunit", "rspec", "minitest", "none"] | None = None

    @field_validator("run")
    @classmethod
    def _not_empty(cls, v: Command) -> Command:
        if not v or (isinstance(v, list) and not all(isinstance(a, str) and a for a in v)):
            raise ValueError("must be a non-empty string or a list of non-empty strings")
        return v


class SandboxRepoConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    setup: Command | list[Command] | None = None  # one command, or a list of commands; [] means no setup
    checks: list[RepoCheck] | None = None  # replaces the detected checks
    image: str | None = None  # Docker image the sandbox starts from
    test_timeout_s: float | None = Field(None, ge=0)  # one pytest test's limit (default 60); 0 turns it off
    check_timeout_s: float | None = Field(None, gt=0)  # each check's limit unless the check sets timeout_s

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, v: list[RepoCheck] | None) -> list[RepoCheck] | None:
        names = [c.name for c in v or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"check names must be unique, repeated: {', '.join(duplicates)}")
        return v


def load_sandbox_config(repo_dir: Path) -> SandboxRepoConfig:
    """Read the sandbox keys of `.github/aura-sicd.yml`; an absent file gives the defaults."""
    path = Path(repo_dir) / CONFIG_PATH
    if not path.is_file():
        return SandboxRepoConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RepoConfigError(f"{CONFIG_PATH} is not valid YAML: {exc}") from exc
    if data is None:
        return SandboxRepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigError(f"{CONFIG_PATH} must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return SandboxRepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise RepoConfigError(f"{CONFIG_PATH} is invalid: {problems}") from exc
