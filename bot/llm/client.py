"""The LLM layer: structured chat requests to a model server, whichever API it speaks.

Every role asks for one pydantic model. The request carries that model's JSON schema in the server's
structured-output dialect (the server constrains decoding to it), the reply is validated, and an
invalid reply gets exactly one repair request that quotes the validation error; a reply cut off at
the token limit is named as such. Transport failures (connection errors, timeouts, HTTP 5xx) are
retried with exponential backoff and jitter; HTTP 4xx never is. The context window is the smaller of
the configured one and the model's own, prompts are counted in the model's tokens as far as the
server lets us (bot/llm/tokens.py), and a prompt that would not fit is refused before anything is sent.
Every chat request made is recorded as an `LLMCall`, failures included, and travels with the result
or with the exception (`exc.calls`).

The providers (bot/llm/providers/: Ollama's native API, OpenAI-compatible servers) implement the few
transport methods at the bottom of `ChatLLM`; everything above them is shared.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
import ollama
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from bot.llm.errors import (
    CONTEXT_OVERFLOW,
    NUM_CTX_SETTING,
    InvalidModelOutput,
    LLMError,
    LLMRequestError,
    ModelNotPulled,
    OllamaUnreachable,
    PromptTooLarge,
    ServerHTTPError,
    ServerUnreachable,
    is_transient,
)
from bot.records import LLMCall
from bot.llm.tokens import MESSAGE_OVERHEAD_TOKENS, TokenCounter

__all__ = [  # the errors live in bot/llm/errors.py and are imported from here
    "NUM_CTX_SETTING", "ChatLLM", "ChatReply", "ChatRequest", "InvalidModelOutput", "LLMError", "LLMRequestError",
    "ModelClient", "ModelNotPulled", "RoleModel", "OllamaUnreachable", "PromptTooLarge", "ServerHTTPError", "ServerUnreachable",
    "canonical_model_name", "describe_validation_error", "is_transient", "parse_reply",
]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

def canonical_model_name(name: str) -> str:
    """`qwen2.5` and `qwen2.5:latest` name the same model (the tag defaults to latest)."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def describe_validation_error(exc: ValidationError, limit: int = 10) -> str:
    """The validation error as short lines a small model can act on (no documentation URLs)."""
    lines = []
    for error in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "(the whole reply)"
        line = f"- {where}: {error['msg']}"
        if error["type"] != "json_invalid" and not isinstance(error.get("input"), dict | list):
            line += f" (got {error.get('input')!r:.80})"
        lines.append(line)
    if exc.error_count() > limit:
        lines.append(f"- ... and {exc.error_count() - limit} more errors")
    return "\n".join(lines)


def parse_reply(schema: type[T], content: str) -> T:
    """Validate `content` against `schema`, tolerating a Markdown code fence around the JSON and raw
    control characters (newlines, tabs) inside its strings: llama-cpp-python's grammar admits them in a
    string (its `char` rule is `[^"\\\\]`), JSON does not, and the reply means the same."""
    text = content.strip()
    if text.startswith("```"):
        body = text.split("\n", 1)[1] if "\n" in text else ""
        text = body.rsplit("```", 1)[0]
    try:
        return schema.model_validate_json(text)
    except ValidationError as exc:
        if not any(error["type"] == "json_invalid" for error in exc.errors()):
            raise
        try:
            data = json.loads(text, strict=False)
        except ValueError:
            raise exc from None
        return schema.model_validate(data)


@dataclass
class ChatRequest:
    """One chat request as every provider needs it; each sends it in its own API's terms."""

    model: str
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None  # the JSON schema the reply is constrained to; None: free text
    num_ctx: int
    max_tokens: int
    temperature: float
    seed: int | None = None
    role: str = ""


class ChatReply(BaseModel):
    """A server's reply with the counters it reports; None where it reports nothing."""

    content: str
    finish_reason: str | None = None  # "length": cut off at max_tokens
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server took from its cache
    prompt_ms: float | None = None
    generation_ms: float | None = None
    total_ms: float | None = None


class RoleModel(Protocol):
    """What a role asks of the model that serves it. `ChatLLM` is one; a stand-in that answers without a
    server (the SWE-bench oracle, bot/runs/swebench/oracle.py) is another, with these same signatures
    (tests/llm/test_model_client.py compares them)."""

    async def ensure_models(self, models: Iterable[str]) -> None: ...

    async def context_window(self, model: str, configured: int) -> int: ...

    def counter(self, model: str) -> TokenCounter: ...

    async def count_prompt(self, model: str, messages: list[dict[str, str]]) -> tuple[int, bool]: ...

    async def structured(
        self,
        *,
        role: str,
        model: str,
        messages: list[dict[str, str]],
        schema: type[T],
        num_ctx: int,
        max_output_tokens: int,
        temperature: float = 0.2,
        seed: int | None = None,
        parse: Callable[[str], T] | None = None,
        constrain: bool = True,
        request_schema: dict[str, Any] | None = None,
    ) -> tuple[T, list[LLMCall]]: ...


class ModelClient(Protocol):
    """What the cycle holds: one ChatLLM, or a router giving each role its provider's (bot/llm/providers/)."""

    def for_role(self, role: str) -> RoleModel: ...

    async def aclose(self) -> None: ...


class ChatLLM(ABC):
    """Structured chat requests to one model server. Subclasses speak one API (bot/llm/providers/).

    `retries` is the number of HTTP attempts per request, the first one included. `wait` replaces the
    backoff between attempts (tests pass `tenacity.wait_none()`).
    """

    provider: ClassVar[str]
    location: ClassVar[str]  # the setting that names the server, in error messages

    def __init__(self, host: str, *, timeout_s: float = 600.0, retries: int = 4, wait: wait_base | None = None) -> None:
        if retries < 1:
            raise ValueError("retries counts attempts and must be at least 1")
        self.host = host.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._wait = wait if wait is not None else wait_exponential_jitter(initial=1, max=30, jitter=1)
        self._windows: dict[str, int | None] = {}
        self._counters: dict[str, TokenCounter] = {}

    async def aclose(self) -> None:
        """Close the HTTP client (only one this object created)."""

    async def __aenter__(self) -> ChatLLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def for_role(self, role: str) -> ChatLLM:
        """The client that serves `role` (a router of several providers picks one)."""
        return self

    # --- before a run ---------------------------------------------------------------------------

    async def ensure_models(self, models: Iterable[str]) -> None:
        """Check that the server has every model; raise ModelNotPulled naming the missing ones."""
        wanted = list(dict.fromkeys(m for m in models if m))
        listed, _ = await self._send(f"listing the models ({self.models_endpoint})", self._model_names)
        missing = [m for m in wanted if not self._has_model(m, listed)]
        if missing:
            raise self._missing(missing, listed)

    async def context_window(self, model: str, configured: int) -> int:
        """The window to use for `model`: `configured`, but never more than the model has."""
        if model not in self._windows:
            try:
                self._windows[model], _ = await self._send(f"reading the context window of {model}",
                                                           partial(self._server_window, model))
            except LLMError:
                self._windows[model] = None  # a server that does not say: the setting stands
        window = self._windows[model]
        return min(configured, window) if window else configured

    def counter(self, model: str) -> TokenCounter:
        """The token counter of `model`, calibrated by every count the server reports."""
        return self._counters.setdefault(model, TokenCounter())

    async def count_prompt(self, model: str, messages: list[dict[str, str]]) -> tuple[int, bool]:
        """(tokens of `messages`, exact?): the server's tokenizer where it has one, else the estimate."""
        counter = self.counter(model)
        try:
            exact, _ = await self._send(f"counting the prompt's tokens for {model}",
                                        partial(self._server_count, model, messages))
        except LLMError:
            exact = None
        if exact is None:
            return counter.count_messages(messages), False
        counter.calibrate(messages, exact)
        return exact, True

    # --- structured requests --------------------------------------------------------------------

    async def structured(
        self,
        *,
        role: str,
        model: str,
        messages: list[dict[str, str]],
        schema: type[T],
        num_ctx: int,
        max_output_tokens: int,
        temperature: float = 0.2,
        seed: int | None = None,
        parse: Callable[[str], T] | None = None,
        constrain: bool = True,
        request_schema: dict[str, Any] | None = None,
    ) -> tuple[T, list[LLMCall]]:
        """Ask `model` for a reply shaped like `schema`: (validated reply, one LLMCall per request).

        `parse` reads the reply's text (default: `schema` from JSON, a code fence tolerated); the
        ValidationError it raises for an invalid reply is quoted in the repair request. Without
        `constrain` the reply is free text (a plain-text edit format): no schema is sent. `request_schema`
        replaces `schema`'s JSON schema for this request (one narrowed to what the prompt showed).
        """
        parse = parse or partial(parse_reply, schema)
        prompt_tokens, exact = await self.count_prompt(model, messages)
        if prompt_tokens + max_output_tokens > num_ctx:
            raise PromptTooLarge(role=role, prompt_tokens=prompt_tokens, max_output_tokens=max_output_tokens,
                                 num_ctx=num_ctx, counted="exactly" if exact else "about")
        json_schema = (request_schema or schema.model_json_schema()) if constrain else None
        request = ChatRequest(model, messages, json_schema, num_ctx, max_output_tokens, temperature, seed, role)
        calls: list[LLMCall] = []

        reply = await self._chat(role, request, calls)
        try:
            return parse(reply.content), calls
        except ValidationError as exc:
            error = describe_validation_error(exc)
        calls[-1].ok, calls[-1].error = False, self._invalid(error, reply, max_output_tokens)

        repair = self._repair_messages(model, messages, reply, error, num_ctx, max_output_tokens)
        reply = await self._chat(role, ChatRequest(**{**request.__dict__, "messages": repair}), calls, repaired=True)
        try:
            return parse(reply.content), calls
        except ValidationError as exc:
            error = describe_validation_error(exc)
        calls[-1].ok, calls[-1].error = False, self._invalid(error, reply, max_output_tokens)
        cut = " (cut off at the token limit)" if reply.finish_reason == "length" else ""
        raise InvalidModelOutput(
            f"the {role} ({model}) replied with output{cut} that does not fit the {schema.__name__} contract, "
            f"even after a repair request. Validation error:\n{error}",
            calls=calls,
        )

    @staticmethod
    def _invalid(error: str, reply: ChatReply, max_output_tokens: int) -> str:
        if reply.finish_reason == "length":
            return f"truncated: the reply was cut off at the {max_output_tokens}-token limit\n{error}"
        return f"invalid output:\n{error}"

    def _repair_messages(
        self,
        model: str,
        messages: list[dict[str, str]],
        reply: ChatReply,
        error: str,
        num_ctx: int,
        max_output_tokens: int,
    ) -> list[dict[str, str]]:
        """The original conversation, the invalid reply (cut to fit), and what was wrong with it."""
        cut_off = ""
        if reply.finish_reason == "length":
            cut_off = (
                f"\nYour reply was cut off at the {max_output_tokens}-token limit, so it is incomplete. "
                "Reply with something shorter: fewer and smaller edits, shorter texts, no repetition.\n"
            )
        request = {
            "role": "user",
            "content": (
                "Your previous reply is not valid for the required format.\n\n"
                f"Validation error:\n{error}\n{cut_off}\n"
                "Reply again in the format described, and nothing else. "
                "Keep what was right and fix what the error names."
            ),
        }
        counter = self.counter(model)
        room = num_ctx - max_output_tokens - counter.count_messages([*messages, request]) - MESSAGE_OVERHEAD_TOKENS
        if room < 64:  # no space to quote the reply: the error alone has to do
            return [*messages, request]
        quoted = counter.truncate(reply.content, room, keep="head")
        return [*messages, {"role": "assistant", "content": quoted}, request]

    async def _chat(
        self, role: str, request: ChatRequest, calls: list[LLMCall], *, repaired: bool = False
    ) -> ChatReply:
        """One chat request (retried on transient errors), recorded in `calls` whatever happens."""
        call = LLMCall(role=role, model=request.model, repaired=repaired, provider=self.provider)
        started = time.perf_counter()
        try:
            reply, call.attempts = await self._send(
                f"the {role} request to {request.model}", partial(self._chat_once, request), model=request.model
            )
        except LLMError as exc:
            call.attempts = exc.attempts or call.attempts
            if isinstance(exc, LLMRequestError) and CONTEXT_OVERFLOW.search(str(exc)):
                exc = self._refused_as_too_large(request, exc)
            call.ok, call.error = False, str(exc)
            call.duration_ms = (time.perf_counter() - started) * 1000
            calls.append(call)
            exc.calls = list(calls)
            raise exc from exc.__cause__
        counter = self.counter(request.model)
        # The server's own counters; estimates only where a server leaves them out.
        if reply.prompt_tokens:
            counter.calibrate(request.messages, reply.prompt_tokens)
        call.prompt_tokens = reply.prompt_tokens or counter.count_messages(request.messages)
        call.completion_tokens = reply.completion_tokens or counter.count(reply.content)
        call.counted_by_server = bool(reply.prompt_tokens and reply.completion_tokens)
        call.cached_tokens, call.finish_reason = reply.cached_tokens, reply.finish_reason
        call.prompt_ms, call.generation_ms = reply.prompt_ms, reply.generation_ms
        call.duration_ms = reply.total_ms or (time.perf_counter() - started) * 1000
        calls.append(call)
        return reply

    def _refused_as_too_large(self, request: ChatRequest, exc: LLMRequestError) -> PromptTooLarge:
        """The server refused the prompt as longer than its window: our estimate was low for this model,
        so the counter is made stricter (the next prompt is cut more), and the refusal is PromptTooLarge."""
        counter = self.counter(request.model)
        counter.bytes_per_token = max(1.0, counter.bytes_per_token * 0.8)
        error = PromptTooLarge(role=request.role or "model", prompt_tokens=counter.count_messages(request.messages),
                               max_output_tokens=request.max_tokens, num_ctx=request.num_ctx,
                               counted="(the server refused it) about")
        error.attempts = exc.attempts
        return error

    async def _send(self, what: str, request: Callable[[], Awaitable[R]], *, model: str | None = None) -> tuple[R, int]:
        """Run `request` with retries; return (result, attempts) or raise an LLMError that says why."""
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    result = await request()
        except LLMError as exc:  # already explained by the provider
            exc.attempts = attempts
            raise
        except (ServerHTTPError, ollama.ResponseError, ConnectionError, httpx.TransportError) as exc:
            error = self._explain(what, exc, attempts, model)
            error.attempts = attempts
            raise error from exc
        except ValueError as exc:  # a body that is not JSON, or not shaped like the API's
            error = LLMRequestError(
                f"{what}: the server at {self.location}={self.host} did not answer like {self.server_kind}: {exc}"
            )
            error.attempts = attempts
            raise error from exc
        return result, attempts

    def _explain(self, what: str, exc: Exception, attempts: int, model: str | None) -> LLMError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return self._unreachable(f"{what}, {tries}")
        if isinstance(exc, httpx.TimeoutException):
            return LLMRequestError(
                f"{what}: the {self.server_name} at {self.host} did not answer within {self.timeout_s:g} s ({tries}). "
                "Large models on a CPU are slow: raise AURA_OLLAMA_TIMEOUT_S or use a smaller model."
            )
        if isinstance(exc, httpx.TransportError):
            return LLMRequestError(f"{what}: the connection to {self.host} failed ({tries}): {exc!r}")
        assert isinstance(exc, ServerHTTPError | ollama.ResponseError)
        if exc.status_code in (404, 400) and model and self._is_missing_model(str(exc.error)):
            return self._missing([model], None)
        if exc.status_code >= 500:
            return LLMRequestError(
                f"{what}: the {self.server_name} at {self.host} failed with HTTP {exc.status_code} ({tries}): {exc.error}",
                status_code=exc.status_code,
            )
        return LLMRequestError(
            f"{what}: the {self.server_name} at {self.host} refused it with HTTP {exc.status_code}: {exc.error}",
            status_code=exc.status_code,
        )

    # --- what each provider implements ----------------------------------------------------------

    server_name: ClassVar[str]  # "Ollama server"
    server_kind: ClassVar[str]  # "an Ollama server", in "did not answer like ..."
    models_endpoint: ClassVar[str]

    @abstractmethod
    async def _chat_once(self, request: ChatRequest) -> ChatReply:
        """Send one chat request; raise ServerHTTPError, httpx errors or ValueError on failure."""

    @abstractmethod
    async def _model_names(self) -> list[str]:
        """The names of the models the server has."""

    async def _server_window(self, model: str) -> int | None:
        """The model's context window as the server reports it; None if it does not."""
        return None

    async def _server_count(self, model: str, messages: list[dict[str, str]]) -> int | None:
        """The prompt's tokens as the server's tokenizer counts them; None without a tokenizer endpoint."""
        return None

    @abstractmethod
    def _has_model(self, model: str, listed: list[str]) -> bool: ...

    @abstractmethod
    def _missing(self, models: list[str], listed: list[str] | None) -> LLMError: ...

    @abstractmethod
    def _unreachable(self, what: str) -> LLMError: ...

    @staticmethod
    def _is_missing_model(error: str) -> bool:
        return "not found" in error.lower()
