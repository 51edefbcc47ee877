from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
from starlette.testclient import TestClient

from bot.config import Settings
from bot.jobs.memory_queue import InMemoryJobQueue
from sandbox.config import SandboxSettings
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, FakeGitHub, private_key_pem
from tests.fakes.ollama import FakeOllama
from tests.webhooks.conftest import make_client

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GEN, DISC = "qwen2.5-coder:7b", "qwen2.5:7b"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = dict(
        _env_file=None, data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'aura.db'}",
        github_app_id=APP_ID, github_private_key=private_key_pem(), github_webhook_secret=WEBHOOK_SECRET,
        admin_token=TOKEN, ENABLE_TRAINING=True, ENABLE_AUTONOMY=False, SAFE_MODE=True,
        ollama_host="http://ollama.test", max_iterations=2, ollama_retries=1,
        sandbox=SandboxSettings(_env_file=None, backend="bwrap"), github_git_url=str(tmp_path / "git"),
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def http() -> Iterator[respx.MockRouter]:
    """One respx router for GitHub and Ollama: both fakes register their routes on it."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def github(http) -> FakeGitHub:
    return FakeGitHub(http)


@pytest.fixture
def ollama(http) -> FakeOllama:
    return FakeOllama(http).pull(GEN, DISC)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings, github, ollama) -> Iterator[TestClient]:
    with make_client(settings, InMemoryJobQueue()) as c:
        yield c


def audit(client: TestClient, action: str) -> list:
    return client.app.state.runtime.store.list_audit(action=action)
