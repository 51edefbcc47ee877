"""Sandbox settings (environment prefix AURA_SANDBOX_), independent of the bot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sandbox.egress import DEFAULT_ALLOW, PROXY_VARIABLES

# Host variables the network-enabled setup phase may need to reach a package registry. Nothing else of the
# host environment ever enters a sandbox, and these never enter the checks.
SETUP_PASSTHROUGH_ENV = [
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_DEFAULT_TIMEOUT",
    "npm_config_registry", "GOPROXY", "GONOSUMDB", "GOPRIVATE",
]


def default_cache_dir() -> Path:
    # root's home is closed to the unprivileged uid that bubblewrap runs as, so root caches in /var/cache
    if os.geteuid() == 0:
        return Path("/var/cache/aura-sicd/sandbox")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aura-sicd" / "sandbox"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AURA_SANDBOX_", env_file=".env", extra="ignore")

    backend: Literal["auto", "docker", "bwrap", "local"] = "auto"  # local: no isolation, debugging only
    image: str = "aura-sicd-check:latest"  # the check image built by `aura-sicd sandbox build`
    base_image: str = "python:3.12-slim"  # build argument of sandbox/Dockerfile
    # Docker: one image per language (IMAGE:python, IMAGE:go...), built on first use, instead of `image`
    language_images: bool = False
    timeout_s: float = Field(300.0, gt=0)  # wall clock, per command and per check
    setup_timeout_s: float = Field(900.0, gt=0)
    memory_mb: int = Field(2048, ge=64)
    cpus: float = Field(2.0, gt=0)
    pids: int = Field(512, ge=16)
    output_limit: int = Field(20000, ge=1000)  # characters kept per command output

    cache_dir: Path = Field(default_factory=default_cache_dir)  # bubblewrap tool/env caches, session dirs
    setup_network: bool = True  # the setup phase may reach package registries; checks never can
    # ... only through the egress proxy (sandbox/egress.py): these hosts (globs; host:port for another port
    # than 443/80), plus the hosts of PIP_INDEX_URL & co.; never loopback, link-local or private addresses
    setup_egress_allow: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOW))
    setup_egress_private_hosts: list[str] = Field(default_factory=list)  # an internal mirror's host names
    setup_passthrough_env: list[str] = Field(default_factory=lambda: list(SETUP_PASSTHROUGH_ENV))
    tmp_mb: int = Field(512, ge=16)  # size of /tmp inside a Docker sandbox
    docker_timeout_s: float = Field(120.0, gt=0)  # one Docker API call
    # a pool of Docker engines sharing the checks (sandbox/docker_pool.py); empty: DOCKER_HOST alone
    docker_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sandbox_uid: int = 1000  # uid that commands run as inside the sandbox
    keeper_uid: int = 1001  # uid of a Docker sandbox's idle main process (out of reach of the commands)
    bwrap_path: str = "bwrap"
    bwrap_python: Path = Path("/usr/bin/python3")  # interpreter of the bubblewrap tool environment
    bwrap_host_uid: int = 65534  # when the bot runs as root, bubblewrap runs as this uid (nobody)
    # total memory, CPU and processes per bubblewrap command through a cgroup (sandbox/cgroups.py):
    # auto: where the host allows, require: the backend is unavailable without, off: rlimits only
    bwrap_cgroups: Literal["auto", "require", "off"] = "auto"
    cgroup_parent: Path | None = None  # cgroup v2: a directory delegated to the bot
    tools: list[str] = Field(default_factory=lambda: ["pytest>=8,<10", "ruff", "mypy"])

    @field_validator("docker_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        """`tcp://a:2376,ssh://ci@b` (or a JSON list) from the environment."""
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [host.strip() for host in v.split(",") if host.strip()]
        return v

    def setup_env(self) -> dict[str, str]:
        """The host variables that the setup phase receives (registries), and nothing else. The host's
        proxy variables stay out: the setup's proxy is the egress proxy, which chains through them."""
        return {k: os.environ[k] for k in self.setup_passthrough_env if k in os.environ and k not in PROXY_VARIABLES}
