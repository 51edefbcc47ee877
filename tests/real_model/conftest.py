"""The real-model tests' server: llama-cpp-python serving SmolLM2-135M-Instruct (tests/llama_server.py),
started once per module. Missing pieces skip these tests, except with AURA_REQUIRE_REAL_MODEL=1 (CI),
where they fail them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backends import require
from tests.llama_server import LlamaServer, _free_port, gguf_path
from tests.wait import answers, still_running, wait_until


@dataclass
class OllamaOverLlama:
    host: str
    requests_log: Path  # one JSON line per chat request: options, format, counters answered


@pytest.fixture(scope="module")
def ollama_over_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OllamaOverLlama]:
    """Ollama's API over the same GGUF (tests/ollama_over_llama.py), in its own process."""
    require("real_model")
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
        def log() -> str:
            return (work / "server.log").read_text()[-2000:]

        def ready() -> bool:
            still_running(process, "the Ollama API over llama.cpp", log)
            return answers(f"{host}/api/tags")

        wait_until(ready, timeout=120, interval=0.5, what="the Ollama API over llama.cpp to answer", details=log)
        yield OllamaOverLlama(host, work / "requests.jsonl")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    require("real_model")
    server = LlamaServer.start(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    server.stop()
