"""Sandbox fixtures. A backend that is unavailable skips its tests, except with AURA_REQUIRE_SANDBOXES=1
(CI), where it fails them (tests/backends.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import SandboxSettings
from sandbox.box import backend_class
from tests.backends import skip_or_fail

# small limits keep the hostile tests quick
LIMITS = {"memory_mb": 256, "pids": 64, "timeout_s": 60.0, "output_limit": 20000}


def settings_for(backend: str, **overrides) -> SandboxSettings:
    return SandboxSettings(backend=backend, **{**LIMITS, **overrides})


def require_backend(backend: str) -> SandboxSettings:
    settings = settings_for(backend)
    reason = backend_class(backend).unavailable_reason(settings)
    if reason:
        skip_or_fail(backend, f"{backend} sandbox unavailable: {reason}")
    return settings


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the fast tier leaves these tests out
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for a backend's settings (`bwrap_settings`, `docker_settings`) runs that backend:
    it carries the backend's marker, as the tests marked by hand do."""
    for item in items:
        for backend in ("bwrap", "docker"):
            if f"{backend}_settings" in getattr(item, "fixturenames", ()) and item.get_closest_marker(backend) is None:
                item.add_marker(backend)


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap", marks=pytest.mark.bwrap)])
def backend(request) -> str:
    require_backend(request.param)
    return request.param


@pytest.fixture
def docker_settings() -> SandboxSettings:
    return require_backend("docker")


@pytest.fixture
def bwrap_settings() -> SandboxSettings:
    return require_backend("bwrap")


def write_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
