"""The real-model tests' server: llama-cpp-python serving SmolLM2-135M-Instruct (tests/llama_server.py),
started once per module. Missing pieces skip these tests, except with AURA_REQUIRE_REAL_MODEL=1 (CI),
where they fail them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.llama_server import LlamaServer, _free_port, gguf_path, missing

REQUIRE = os.environ.get("AURA_REQUIRE_REAL_MODEL") == "1"


def require_real_model() -> None:
    reason = missing()
    if reason:
        if REQUIRE:
            pytest.fail(f"real model unavailable: {reason} (AURA_REQUIRE_REAL_MODEL=1)")
        pytest.skip(f"real model unavailable: {reason}")


@dataclass
class OllamaOverLlama:
    host: str
    requests_log: Path  # one JSON line per chat request: options, format, counters answered


@pytest.fixture(scope="module")
def ollama_over_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OllamaOverLlama]:
    """Ollama's API over the same GGUF (tests/ollama_over_llama.py), in its own process."""
    require_real_model()
    work = tmp_path_factory.mktemp("ollama")
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    with (work / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.ollama_over_llama", str(gguf_path()), str(port), str(work / "requests.jsonl")],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdout=log, stderr=subprocess.STDOUT,
        )
    host = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{host}/api/tags", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the Ollama API over llama.cpp did not start:\n{(work / 'server.log').read_text()[-2000:]}")
        yield OllamaOverLlama(host, work / "requests.jsonl")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    require_real_model()
    server = LlamaServer.start(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    server.stop()
