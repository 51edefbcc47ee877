"""What the command groups share: settings and the store, with configuration problems as ConfigError (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from bot.cli import ConfigError
from bot.config import Settings
from bot.store import Store, StoreError


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The store, migrated; a database that cannot be opened or read is a configuration error."""
    try:
        store = Store.open(settings.database_url)
    except StoreError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        yield store
    except StoreError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        store.close()
