"""Every table of the database in one metadata (all of them are declared in `bot/store/tables.py`).

Migrations (bot/store/migrations) and the schema test compare against this.
"""

from __future__ import annotations

from bot.store.tables import Base

metadata = Base.metadata
