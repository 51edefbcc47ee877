"""Persistence: runs, episodes, iterations, guidance history and the audit trail (docs/store.md)."""

from bot.store.store import (
    AuditEntry,
    EpisodeSummary,
    RunInfo,
    RunSummary,
    Store,
    StoredGuidance,
    StoreError,
    export_episodes,
)

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
