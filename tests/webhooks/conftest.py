from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bot.config import Settings
from bot.github.client import GitHubApp
from bot.jobs.memory_queue import InMemoryJobQueue
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, private_key_pem, signed_headers
from webhooks.app import create_app


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        store_url=f"sqlite:///{tmp_path / 'aura.db'}",
        github_app_id=APP_ID,
        github_private_key=private_key_pem(),
        github_webhook_secret=WEBHOOK_SECRET,
        trigger_label="aura-sicd",
    )


@pytest.fixture
def queue() -> InMemoryJobQueue:
    return InMemoryJobQueue(coalesce_window_s=3600)  # tests release coalesced jobs with flush()


async def _ok() -> None:
    return None


def make_client(settings: Settings, queue: InMemoryJobQueue, **kwargs) -> TestClient:
    app = create_app(
        settings,
        queue=queue,
        github_factory=lambda creds: GitHubApp(creds, api_url=settings.github_api_url, retry_backoff_s=0.01),
        readiness=kwargs.pop("readiness", {"store": _ok}),
        **kwargs,
    )
    return TestClient(app)


@pytest.fixture
def client(settings, queue, github) -> Iterator[TestClient]:
    with make_client(settings, queue) as c:
        yield c


def deliver(client: TestClient, event: str, body: bytes, *, delivery: str | None = None, secret: str = WEBHOOK_SECRET):
    """POST a delivery signed with `secret`, exactly as GitHub would, and wait for its admission."""
    headers = signed_headers(event, body, delivery or str(uuid.uuid4()), secret)
    response = client.post("/webhooks/github", content=body, headers=headers)
    runtime = getattr(client.app.state, "runtime", None)
    if runtime is not None:
        client.portal.call(runtime.drain)
    return response
