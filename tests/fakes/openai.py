"""A fake OpenAI-compatible server at the HTTP level (respx), in the flavours the bot meets.

    fake = FakeOpenAI(router, flavour="llama-cpp-python", models=("smollm2",))
    fake.queue({"coverage": 1, ...})               # replies, in order; a str is sent as the raw content
    llm = fake.llm()                               # an OpenAILLM pointed at it, no backoff waits

Flavours: "llama-server" (json_schema, /props with n_ctx, /tokenize, timings with cache_n), "vllm"
(json_schema, max_model_len in /v1/models, /tokenize with count, usage.prompt_tokens_details),
"llama-cpp-python" (json_object only, refusing json_schema with HTTP 500 as it does, /extras/tokenize/
count), "lmstudio" (json_schema, no tokenizer, /api/v0/models/<id>). Token counts are one token per
2 bytes, so tests can tell the server's count from the bot's 3-bytes-per-token estimate.
"""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any, Literal

import httpx
import respx
from pydantic import BaseModel
from tenacity import wait_none

from bot.llm.providers.openai import OpenAILLM

Flavour = Literal["llama-server", "vllm", "llama-cpp-python", "lmstudio"]
HOST = "http://openai.test"


def server_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 2)


class FakeOpenAI:
    def __init__(
        self, router: respx.MockRouter, *, flavour: Flavour = "llama-server", models: tuple[str, ...] = ("m",),
        n_ctx: int = 8192, api_key: str | None = None,
    ) -> None:
        self.flavour, self.models, self.n_ctx, self.api_key = flavour, list(models), n_ctx, api_key
        self.requests: list[dict[str, Any]] = []  # bodies of the chat requests, refused ones included
        self.paths: list[str] = []  # every path requested, in order
        self.cached = 0  # prompt tokens reported as cached on the next replies
        self._replies: deque[tuple[Any, str]] = deque()
        self._failures: deque[int | str] = deque()
        router.route(url__startswith=f"{HOST}/").mock(side_effect=self._dispatch)

    def queue(self, *replies: Any, finish_reason: str = "stop") -> FakeOpenAI:
        for reply in replies:
            self._replies.append((reply, finish_reason))
        return self

    def fail_next(self, failure: int | str, times: int = 1) -> FakeOpenAI:
        """An HTTP status, "connect", or "context" (a prompt over the window, as OpenAI words it)."""
        self._failures.extend([failure] * times)
        return self

    def llm(self, **kwargs: Any) -> OpenAILLM:
        kwargs.setdefault("wait", wait_none())
        return OpenAILLM(f"{HOST}/v1", **kwargs)

    # --- the server -----------------------------------------------------------------------------

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
        if path == "/v1/chat/completions":
            return self._chat(request)
        if path == "/v1/models":
            entry = {"object": "model", "owned_by": "me"}
            if self.flavour == "vllm":
                entry["max_model_len"] = self.n_ctx
            return httpx.Response(200, json={"object": "list", "data": [{"id": m, **entry} for m in self.models]})
        body = json.loads(request.content) if request.content else {}
        if path == "/props" and self.flavour == "llama-server":
            return httpx.Response(200, json={"default_generation_settings": {"n_ctx": self.n_ctx}, "total_slots": 1})
        if path == "/tokenize" and self.flavour in ("llama-server", "vllm"):
            tokens = list(range(server_tokens(body.get("content") or body.get("prompt") or "")))
            extra = {"count": len(tokens), "max_model_len": self.n_ctx} if self.flavour == "vllm" else {}
            return httpx.Response(200, json={"tokens": tokens, **extra})
        if path == "/extras/tokenize/count" and self.flavour == "llama-cpp-python":
            return httpx.Response(200, json={"count": server_tokens(body["input"])})
        if path.startswith("/api/v0/models/") and self.flavour == "lmstudio":
            return httpx.Response(200, json={"id": path.rsplit("/", 1)[-1], "max_context_length": 32768,
                                             "loaded_context_length": self.n_ctx})
        return httpx.Response(404, json={"detail": "Not Found"})

    def _chat(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if self._failures:
            failure = self._failures.popleft()
            if failure == "connect":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if failure == "context":
                return self._too_long(body)
            return httpx.Response(int(failure), json={"error": {"message": f"failure {failure}", "type": "server_error"}})
        response_format = body.get("response_format") or {}
        if self.flavour == "llama-cpp-python" and response_format.get("type") == "json_schema":
            message = ("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                       "'msg': \"Input should be 'text' or 'json_object'\"}")
            return httpx.Response(500, json={"error": {"message": message, "type": "internal_server_error"}})
        if body["model"] not in self.models:
            return httpx.Response(404, json={"error": {"message": f"The model `{body['model']}` does not exist.",
                                                       "code": "model_not_found"}})
        prompt = sum(server_tokens(m["content"]) + 4 for m in body["messages"])
        if prompt + body.get("max_tokens", 0) > self.n_ctx:
            return self._too_long(body)
        reply, finish_reason = self._replies.popleft()
        content = reply if isinstance(reply, str) else reply.model_dump_json() if isinstance(reply, BaseModel) else json.dumps(reply)
        completion = body["max_tokens"] if finish_reason == "length" else max(1, server_tokens(content))
        data: dict[str, Any] = {
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        if self.flavour == "vllm":
            data["usage"]["prompt_tokens_details"] = {"cached_tokens": self.cached}
        if self.flavour == "llama-server":
            data["timings"] = {"cache_n": self.cached, "prompt_n": prompt - self.cached, "prompt_ms": 120.5,
                               "predicted_n": completion, "predicted_ms": 480.25}
        return httpx.Response(200, json=data)

    def _too_long(self, body: dict[str, Any]) -> httpx.Response:
        prompt = sum(server_tokens(m["content"]) + 4 for m in body["messages"])
        message = (f"This model's maximum context length is {self.n_ctx} tokens. However, you requested "
                   f"{prompt + body['max_tokens']} tokens ({prompt} in the messages, {body['max_tokens']} in the "
                   "completion). Please reduce the length of the messages or completion.")
        return httpx.Response(400, json={"error": {"message": message, "type": "invalid_request_error",
                                                   "code": "context_length_exceeded"}})
