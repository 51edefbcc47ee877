"""A fresh PostgreSQL database per test on the server of `AURA_TEST_POSTGRES_URL`.

Skips with the reason when no server is configured or reachable, except under
`AURA_REQUIRE_SANDBOXES=1` (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("AURA_REQUIRE_SANDBOXES") == "1":
        pytest.fail(f"PostgreSQL is required (AURA_REQUIRE_SANDBOXES=1): {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(prefix: str = "aura_t") -> Iterator[str]:
    """Create a database, yield its URL (postgresql+psycopg://…), drop it afterwards."""
    server = os.environ.get("AURA_TEST_POSTGRES_URL")
    if not server:
        _unavailable("AURA_TEST_POSTGRES_URL is not set (scripts/postgres-up starts a server and prints it)")
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(server).set(drivername="postgresql")
    try:
        admin = psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is not reachable: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
