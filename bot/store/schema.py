"""Every table of the database in one metadata: the core tables and those of the GitHub and learning layers.

Migrations (bot/store/migrations) and the schema test compare against this; a new table module is
imported here, or it is missing from both.
"""

from __future__ import annotations

import bot.learning.tables  # noqa: F401  (learning: patterns, opt-outs)
import bot.store.github  # noqa: F401  (GitHub: deliveries, installations, bot PRs, feedback)
from bot.store.tables import Base

metadata = Base.metadata
