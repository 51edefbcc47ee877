"""What the command groups share: settings, the store and a checked model client, with configuration
problems as ConfigError (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.config import Settings
from bot.store import Store, StoreError

if TYPE_CHECKING:
    from bot.llm.client import ModelClient


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


async def checked_client(settings: Settings, repo: Path) -> ModelClient:
    """The model client for a run on `repo`, after the cheap checks first: `repo` is a git repository, and
    the server has every model the settings need. The caller closes the client."""
    from bot.cycle.episode import check_models  # the cycle and the providers: imported when a command runs
    from bot.llm.client import LLMError
    from bot.llm.providers import build_llm
    from bot.workspace import WorkspaceError, ensure_repository

    try:
        ensure_repository(repo)
    except WorkspaceError as exc:
        raise ConfigError(str(exc)) from exc
    llm = build_llm(settings)
    try:
        await check_models(llm, settings)
    except LLMError as exc:
        await llm.aclose()
        raise ConfigError(str(exc)) from exc
    return llm
