"""The store: runs, episodes, iterations, guidance history, the audit trail and the learning layer's
tables, in SQLite or Postgres.

`Store` is the engine and sessions of `Database` (engine.py) plus the queries of each part of the
schema (runs.py, history.py, learning.py, dashboard.py). The GitHub App's tables have their own wrapper,
`GitHubStore` (github.py). Records go in and come out as pydantic models.
"""

from __future__ import annotations

from bot.store.dashboard import DashboardQueries
from bot.store.history import HistoryQueries
from bot.store.learning import LearningQueries
from bot.store.runs import RunQueries


class Store(RunQueries, HistoryQueries, LearningQueries, DashboardQueries):
    """One database, shared between threads; open it with `Store.open(url)` (migrates to the latest schema)."""
