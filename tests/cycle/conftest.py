"""The loop's tests: the calc repository (tests/repos.py), settings with Ollama faked and the fast
tier's sandbox (tests/fakes/sandbox.py), and `cycle_sandbox`, the opener the loop is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from tests.fakes.ollama import FakeOllama
from tests.fakes.sandbox import HOST_SANDBOX
from tests.repos import CALC_FILES, DISC, GEN, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", CALC_FILES)


@pytest.fixture
def settings(tmp_path: Path, fake_ollama: FakeOllama) -> Settings:
    fake_ollama.pull(GEN, DISC)
    return Settings(_env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data", max_iterations=3,
                    sandbox=HOST_SANDBOX)
