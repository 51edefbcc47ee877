"""Throwaway PostgreSQL databases for the benchmarks, on the server of `--postgres-url` or
`AURA_TEST_POSTGRES_URL` (scripts/postgres-up starts one and prints its URL)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator


def server_url(given: str | None = None) -> str:
    url = given or os.environ.get("AURA_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("no PostgreSQL server: pass --postgres-url or set AURA_TEST_POSTGRES_URL (scripts/postgres-up)")
    return url


@contextlib.contextmanager
def databases(server: str, *names: str) -> Iterator[list[str]]:
    """Create one database per name (made unique), yield their postgresql+psycopg URLs, drop them after."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(server).set(drivername="postgresql")
    made = [f"bench_{name}_{uuid.uuid4().hex[:8]}" for name in names]
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as admin:
        try:
            for name in made:
                admin.execute(f'CREATE DATABASE "{name}"')
            yield [admin_url.set(drivername="postgresql+psycopg", database=n).render_as_string(hide_password=False)
                   for n in made]
        finally:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
