"""The store: runs, episodes, iterations, guidance history and the audit trail, in SQLite or Postgres.

`Store` is the engine and sessions of `Database` (engine.py) plus the queries of each part of the
schema (runs.py, history.py). Records go in and come out as pydantic models.
"""

from __future__ import annotations

from bot.store.history import HistoryQueries
from bot.store.runs import RunQueries


class Store(RunQueries, HistoryQueries):
    """One database, shared between threads; open it with `Store.open(url)` (migrates to the latest schema)."""
