"""Fixtures every test package may use: the fakes of tests/fakes/ as fixtures, so no test module imports
a fixture function (and shadows it with a parameter of the same name)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from tests.fakes.ollama import FakeOllama


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A FakeOllama at http://ollama.test on its own respx router (any other host is refused)."""
    with respx.mock(assert_all_called=False) as router:
        yield FakeOllama(router)
