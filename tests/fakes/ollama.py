"""A fake Ollama server at the HTTP level, for any test that drives the model roles.

    async def test_something(fake_ollama):   # the fixture, from tests/conftest.py
        fake_ollama.pull("qwen2.5-coder:7b")
        fake_ollama.queue("generator", {"summary": "...", "changes": [...]})
        llm = fake_ollama.llm()              # an OllamaLLM pointed at the fake, no backoff waits
        ...
        assert "run the tests" in fake_ollama.prompt(fake_ollama.requests_for("generator")[-1])

Replies are dispatched by the `title` of the JSON schema sent as `format` ("Proposal", "Rubric",
"AgitatorGuidance"); `queue` and `requests_for` also take the role names. Response bodies carry the
fields and counters a real server sends. A test that mocks other hosts with respx too passes its own
router: `FakeOllama(respx_mock)`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import respx
from pydantic import BaseModel
from tenacity import wait_none

from bot.llm.providers.ollama import OllamaLLM
from bot.llm.tokens import count_message_tokens, count_tokens

DEFAULT_HOST = "http://ollama.test"
ROLE_TITLES = {"generator": "Proposal", "discriminator": "Rubric", "agitator": "AgitatorGuidance"}

Failure = int | Literal["connect", "timeout", "invalid_json"]
Reply = dict[str, Any] | str | BaseModel

# What a real server says for each status we simulate.
ERROR_TEXTS = {
    400: "invalid format: expected \"json\" or a JSON schema",
    404: 'model "{model}" not found, try pulling it first',
    500: "llama runner process has terminated: signal: killed",
    503: "server busy, please try again. maximum pending requests exceeded",
}


def _key(role_or_title: str) -> str:
    return ROLE_TITLES.get(role_or_title, role_or_title)


class FakeOllama:
    def __init__(
        self,
        router: respx.MockRouter | respx.Router,
        host: str = DEFAULT_HOST,
        *,
        models: tuple[str, ...] = (),
        enforce_pulled: bool = False,
    ) -> None:
        self.host = host.rstrip("/")
        self.models: list[str] = list(models)
        self.enforce_pulled = enforce_pulled  # chat with a model not pulled -> 404, like Ollama
        self.unreachable = False  # every request fails with "connection refused" while set
        self.context_length: int | None = None  # the trained window /api/show reports; None: no /api/show
        self.requests: list[dict[str, Any]] = []  # parsed bodies of every /api/chat request, in order
        self.tags_requests = 0
        self._replies: dict[str, deque[tuple[Reply, dict[str, Any]]]] = defaultdict(deque)
        self._always: dict[str, tuple[Reply, dict[str, Any]]] = {}
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        # One route for the whole host, so a router that asserts all its routes were called is content
        # as soon as anything reached the fake.
        router.route(url__startswith=f"{self.host}/").mock(side_effect=self._dispatch)

    # --- setting up -----------------------------------------------------------------------------

    def pull(self, *models: str) -> FakeOllama:
        """List these models in /api/tags (as Ollama names them: with a tag)."""
        for model in models:
            name = model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"
            if name not in self.models:
                self.models.append(name)
        return self

    def queue(
        self,
        role_or_title: str,
        *replies: Reply,
        done_reason: str = "stop",
        prompt_eval_count: int | None = None,
        eval_count: int | None = None,
    ) -> FakeOllama:
        """Replies for the next requests of one role, in order. A str is sent as the raw content."""
        extra = {"done_reason": done_reason, "prompt_eval_count": prompt_eval_count, "eval_count": eval_count}
        for reply in replies:
            self._replies[_key(role_or_title)].append((reply, extra))
        return self

    def always(self, role_or_title: str, reply: Reply) -> FakeOllama:
        """The reply for a role whenever its queue is empty (long cycles)."""
        self._always[_key(role_or_title)] = (reply, {"done_reason": "stop"})
        return self

    def fail_next(self, failure: Failure, *, times: int = 1, endpoint: Literal["chat", "tags"] = "chat") -> FakeOllama:
        """Fail the next requests to an endpoint: an HTTP status, "connect", "timeout" or "invalid_json"."""
        self._failures[endpoint].extend([failure] * times)
        return self

    def llm(self, **kwargs: Any) -> OllamaLLM:
        """An OllamaLLM pointed at this fake, without waits between retries."""
        kwargs.setdefault("wait", wait_none())
        return OllamaLLM(self.host, **kwargs)

    # --- inspecting -----------------------------------------------------------------------------

    def requests_for(self, role_or_title: str) -> list[dict[str, Any]]:
        key = _key(role_or_title)
        return [r for r in self.requests if _title(r) == key]

    @staticmethod
    def prompt(request: dict[str, Any]) -> str:
        """All message contents of one request, joined: for `assert "..." in fake.prompt(req)`."""
        return "\n\n".join(m.get("content", "") for m in request.get("messages", []))

    # --- the server -----------------------------------------------------------------------------

    def _failure(self, endpoint: str, request: httpx.Request) -> Failure | None:
        if self.unreachable:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if not self._failures[endpoint]:
            return None
        failure = self._failures[endpoint].popleft()
        if failure == "connect":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return failure

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        endpoint = (request.method, request.url.path)
        if endpoint == ("POST", "/api/chat"):
            return self._chat(request)
        if endpoint == ("GET", "/api/tags"):
            return self._tags(request)
        if endpoint == ("GET", "/api/version"):
            return self._version(request)
        if endpoint == ("POST", "/api/show") and self.context_length is not None:
            return self._show(request)
        if self.unreachable:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(404, text="404 page not found")

    def _version(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200, json={"version": "0.12.6"})

    def _show(self, request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content).get("model", "")
        info = {"general.architecture": "qwen2", "general.parameter_count": 7_615_616_512,
                "qwen2.context_length": self.context_length, "qwen2.embedding_length": 3584}
        return httpx.Response(200, json={"modelfile": f"FROM {model}", "template": "{{ .Prompt }}",
                                         "details": {"family": "qwen2"}, "model_info": info})

    def _tags(self, request: httpx.Request) -> httpx.Response:
        self.tags_requests += 1
        failure = self._failure("tags", request)
        if isinstance(failure, int):
            return _error(failure, "")
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2026-11-01T10:00:00.000000000Z",
                "size": 4_683_087_332,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "qwen2",
                    "families": ["qwen2"],
                    "parameter_size": "7.6B",
                    "quantization_level": "Q4_K_M",
                },
            }
            for name in self.models
        ]
        return httpx.Response(200, json={"models": models})

    def _chat(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        model = body.get("model", "")
        failure = self._failure("chat", request)
        if isinstance(failure, int):
            return _error(failure, model)
        if self.enforce_pulled and model not in self.models and f"{model}:latest" not in self.models:
            return _error(404, model)
        if failure == "invalid_json":
            return _response(body, "Sure! Here is the JSON you asked for: {\"summary\": ", {"done_reason": "stop"})

        key = _title(body)
        if self._replies[key]:
            reply, extra = self._replies[key].popleft()
        elif key in self._always:
            reply, extra = self._always[key]
        else:
            raise AssertionError(f"FakeOllama: no reply queued for {key or 'a request without a schema'}")
        if isinstance(reply, BaseModel):
            content = reply.model_dump_json()
        elif isinstance(reply, str):
            content = reply
        else:
            content = json.dumps(reply)
        return _response(body, content, extra)


def _title(body: dict[str, Any]) -> str:
    schema = body.get("format")
    return schema.get("title", "") if isinstance(schema, dict) else ""


def _error(status: int, model: str) -> httpx.Response:
    text = ERROR_TEXTS.get(status, f"HTTP {status}").format(model=model)
    return httpx.Response(status, json={"error": text})


def _response(body: dict[str, Any], content: str, extra: dict[str, Any]) -> httpx.Response:
    prompt_eval_count = extra.get("prompt_eval_count") or count_message_tokens(body.get("messages", []))
    eval_count = extra.get("eval_count") or max(1, count_tokens(content))
    load, prompt_eval, evaluation = 12_000_000, prompt_eval_count * 250_000, eval_count * 25_000_000
    return httpx.Response(
        200,
        json={
            "model": body.get("model", ""),
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": extra.get("done_reason", "stop"),
            "total_duration": load + prompt_eval + evaluation + 3_000_000,
            "load_duration": load,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": prompt_eval,
            "eval_count": eval_count,
            "eval_duration": evaluation,
        },
    )

