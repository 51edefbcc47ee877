"""Fixtures every test package may use: the fakes of tests/fakes/ and a store, so no test module imports
a fixture function (and shadows it with a parameter of the same name). A folder's conftest adds what its
tests share (a repository, settings) and may narrow these by asking for them under the same name.

A test marked with a backend (`bwrap`, `docker`, `postgres`, `real_model`: tests/backends.py) runs only
where that backend is; the rest is the fast tier (`scripts/test-fast`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from bot.store import Store
from tests.backends import BACKENDS, require
from tests.fakes.github import FakeGitHub
from tests.fakes.ollama import FakeOllama


def pytest_runtest_setup(item: pytest.Item) -> None:
    for backend in BACKENDS:
        if item.get_closest_marker(backend) is not None:
            require(backend)


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A FakeOllama at http://ollama.test on its own respx router (any other host is refused)."""
    with respx.mock(assert_all_called=False) as router:
        yield FakeOllama(router)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A FakeGitHub at its API URL on its own respx router."""
    with respx.mock(assert_all_called=False) as router:
        yield FakeGitHub(router)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store on a SQLite file of its own, migrated to the latest schema."""
    with Store.open(f"sqlite:///{tmp_path / 'aura.db'}") as opened:
        yield opened
