"""Persistence: runs, episodes, iterations, guidance history and the audit trail (docs/store.md)."""

from bot.store.engine import StoreError
from bot.store.export import export_episodes
from bot.store.models import AuditEntry, EpisodeSummary, RunInfo, RunSummary, StoredGuidance
from bot.store.store import Store

__all__ = [
    "AuditEntry",
    "EpisodeSummary",
    "RunInfo",
    "RunSummary",
    "Store",
    "StoreError",
    "StoredGuidance",
    "export_episodes",
]
