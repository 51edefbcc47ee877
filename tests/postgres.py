"""A fresh PostgreSQL database per test on the server of `AURA_TEST_POSTGRES_URL`.

A test that uses it is marked `postgres` (tests/backends.py): skipped with the reason when no server is
configured or reachable, except under `AURA_REQUIRE_SANDBOXES=1` (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from tests.backends import require


@contextlib.contextmanager
def fresh_database(prefix: str = "aura_t") -> Iterator[str]:
    """Create a database, yield its URL (postgresql+psycopg://…), drop it afterwards."""
    require("postgres")
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(os.environ["AURA_TEST_POSTGRES_URL"]).set(drivername="postgresql")
    admin = psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
