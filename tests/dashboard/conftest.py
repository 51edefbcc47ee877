from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bot.jobs.memory_queue import InMemoryJobQueue
from tests.admin.conftest import make_settings
from tests.dashboard.data import fill
from tests.webhooks.conftest import make_client


@pytest.fixture
def open_client(tmp_path, github) -> Iterator[TestClient]:
    """No admin token: a local install, the dashboard is open."""
    with make_client(make_settings(tmp_path, admin_token=None), InMemoryJobQueue()) as client:
        client.ids = fill(client.app.state.runtime.store)
        yield client
