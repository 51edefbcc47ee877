"""Ollama's API over a GGUF model, for tests of the ollama provider with a real model.

    python -m tests.ollama_over_llama MODEL.gguf PORT REQUESTS.jsonl

Serves what the bot uses of Ollama: `/api/tags` (the model as `smollm2:135m`), `/api/show` (the
trained window from the GGUF's metadata, as `model_info["<arch>.context_length"]`) and a non-streaming
`/api/chat` whose `format` schema constrains decoding (llama.cpp's JSON-schema grammar), with
`num_predict`, `temperature` and `seed`, answering with Ollama's `done_reason` and counters. Each chat
request's options and the counters answered are appended to REQUESTS.jsonl, so a test can compare them
with what the bot recorded. The model is loaded with its trained window; a larger `num_ctx` is logged,
not honoured.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from llama_cpp import Llama
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.llama_server import N_THREADS

MODEL_NAME = "smollm2:135m"


def build_app(model_path: str, requests_log: Path) -> Starlette:
    # n_ctx 0: the trained window; one thread, as tests/llama_server.py says why
    llama = Llama(model_path=model_path, n_ctx=0, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False)
    arch = llama.metadata.get("general.architecture", "llama")
    window = int(llama.metadata.get(f"{arch}.context_length", llama.n_ctx()))
    lock = threading.Lock()  # one llama.cpp context: one request at a time, as Ollama's runner does

    async def tags(request: Request) -> JSONResponse:
        details = {"format": "gguf", "family": arch, "parameter_size": "135M", "quantization_level": "Q4_1"}
        return JSONResponse({"models": [{"name": MODEL_NAME, "model": MODEL_NAME, "size": 0, "digest": "0" * 64,
                                         "modified_at": "2026-11-01T10:00:00Z", "details": details}]})

    async def show(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("model") != MODEL_NAME:
            return JSONResponse({"error": f"model '{body.get('model')}' not found"}, status_code=404)
        return JSONResponse({"modelfile": "", "template": "", "details": {"family": arch},
                             "model_info": {"general.architecture": arch, f"{arch}.context_length": window}})

    def complete(body: dict) -> dict:
        options = body.get("options") or {}
        schema = body.get("format")
        response_format = {"type": "json_object", "schema": schema} if isinstance(schema, dict) else None
        started = time.perf_counter_ns()
        with lock:
            out = llama.create_chat_completion(
                messages=body["messages"], max_tokens=options.get("num_predict"), seed=options.get("seed"),
                temperature=options.get("temperature", 0.8), response_format=response_format,
            )
        total = time.perf_counter_ns() - started
        choice, usage = out["choices"][0], out["usage"]
        reply = {
            "model": body["model"], "created_at": datetime.now(UTC).isoformat(),
            "message": {"role": "assistant", "content": choice["message"]["content"] or ""},
            "done": True, "done_reason": choice["finish_reason"], "total_duration": total,
            "prompt_eval_count": usage["prompt_tokens"], "eval_count": usage["completion_tokens"],
        }
        entry = {"options": options, "format": schema, "prompt_eval_count": usage["prompt_tokens"],
                 "eval_count": usage["completion_tokens"], "done_reason": choice["finish_reason"], "window": window}
        with requests_log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        return reply

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("model") != MODEL_NAME:
            return JSONResponse({"error": f"model \"{body.get('model')}\" not found, try pulling it first"}, status_code=404)
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(complete, body))

    routes = [Route("/api/tags", tags), Route("/api/show", show, methods=["POST"]), Route("/api/chat", chat, methods=["POST"])]
    return Starlette(routes=routes)


if __name__ == "__main__":
    model, port, log_path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    uvicorn.run(build_app(model, log_path), host="127.0.0.1", port=port, log_level="warning")
