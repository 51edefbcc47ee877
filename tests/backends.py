"""The backends some tests need, one marker each (registered in pyproject.toml):

- `bwrap`: bubblewrap works here (the real sandbox's isolation);
- `docker`: a Docker engine answers (tests that need the check image ask for it themselves);
- `postgres`: a PostgreSQL server at `AURA_TEST_POSTGRES_URL` answers (scripts/postgres-up);
- `real_model`: llama-cpp-python and the SmolLM2 GGUF are installed (scripts/real-model-setup);
- `browser`: Debian's chromium and Playwright are installed (the dashboard in a real browser).

A marked test is skipped, with the reason, where its backend is missing, except under
`AURA_REQUIRE_SANDBOXES=1` (CI), where that is a failure (`AURA_REQUIRE_REAL_MODEL=1` for the real
model). Everything unmarked is the fast tier (`scripts/test-fast`): no isolation, no engine, no server.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import pytest

BACKENDS = ("bwrap", "docker", "postgres", "real_model", "browser")
CHROMIUM = os.environ.get("AURA_CHROMIUM", "/usr/bin/chromium")


def require_env(backend: str) -> str:
    return "AURA_REQUIRE_REAL_MODEL" if backend == "real_model" else "AURA_REQUIRE_SANDBOXES"


def skip_or_fail(backend: str, reason: str) -> None:
    """Skip the running test because `backend` is missing, or fail it where CI requires the backend."""
    variable = require_env(backend)
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1)")
    pytest.skip(reason)


@functools.cache
def unavailable(backend: str) -> str | None:
    """Why `backend` cannot run here, or None (looked at once per test session)."""
    if backend in ("bwrap", "docker"):
        from sandbox.box import backend_class
        from sandbox.config import SandboxSettings

        settings = SandboxSettings(_env_file=None, backend=backend)
        if backend == "docker":
            return _docker_engine_unavailable(settings)
        reason = backend_class(backend).unavailable_reason(settings)
        return f"bwrap sandbox unavailable: {reason}" if reason else None
    if backend == "postgres":
        return _postgres_unavailable()
    if backend == "browser":
        if not os.path.exists(CHROMIUM):
            return f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if importlib.util.find_spec("playwright") is None:
            return "playwright is not installed (pip install -e '.[test]')"
        return None
    if backend == "real_model":
        from tests.llama_server import missing

        reason = missing()
        return f"real model unavailable: {reason}" if reason else None
    raise ValueError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")


def require(backend: str) -> None:
    reason = unavailable(backend)
    if reason:
        skip_or_fail(backend, reason)


def _docker_engine_unavailable(settings) -> str | None:
    from sandbox.docker import engine_error
    from sandbox.docker_pool import docker_client

    try:
        client = docker_client(settings)
    except Exception as exc:
        return f"docker sandbox unavailable: {engine_error(exc)}"
    try:
        client.ping()
    except Exception as exc:  # no socket, refused, TLS, timeout
        return f"docker sandbox unavailable: {engine_error(exc)}"
    finally:
        client.close()
    return None


def _postgres_unavailable() -> str | None:
    server = os.environ.get("AURA_TEST_POSTGRES_URL")
    if not server:
        return "AURA_TEST_POSTGRES_URL is not set (scripts/postgres-up starts a server and prints it)"
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql")
    try:
        psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable: {exc}"
    return None
