"""The real-model tests' server: llama-cpp-python serving SmolLM2-135M-Instruct (tests/llama_server.py),
started once per module. Missing pieces skip these tests, except with AURA_REQUIRE_REAL_MODEL=1 (CI),
where they fail them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.llama_server import LlamaServer, missing

REQUIRE = os.environ.get("AURA_REQUIRE_REAL_MODEL") == "1"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    reason = missing()
    if reason:
        if REQUIRE:
            pytest.fail(f"real model unavailable: {reason} (AURA_REQUIRE_REAL_MODEL=1)")
        pytest.skip(f"real model unavailable: {reason}")
    server = LlamaServer.start(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    server.stop()
