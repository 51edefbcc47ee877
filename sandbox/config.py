"""Sandbox settings (environment prefix AURA_SANDBOX_), independent of the bot."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AURA_SANDBOX_", env_file=".env", extra="ignore")

    backend: Literal["auto", "docker", "bwrap", "local"] = "auto"  # local: no isolation, debugging only
    image: str = "aura-sicd-check:latest"  # the check image built by `aura-sicd sandbox build`
    base_image: str = "python:3.12-slim"  # build argument of sandbox/Dockerfile
    timeout_s: float = Field(600.0, gt=0)  # wall clock, per command
    setup_timeout_s: float = Field(900.0, gt=0)
    memory_mb: int = Field(2048, ge=64)
    cpus: float = Field(2.0, gt=0)
    pids: int = Field(512, ge=16)
    output_limit: int = Field(20000, ge=1000)  # characters kept per command output
