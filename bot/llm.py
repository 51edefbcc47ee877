"""The LLM layer: structured chat requests to an Ollama server.

Every role asks for one pydantic model. The request sends that model's JSON schema as `format` (Ollama
constrains decoding to it), the reply is validated, and an invalid reply gets exactly one repair
request that quotes the validation error. Transport failures (connection errors, timeouts, HTTP 5xx)
are retried with exponential backoff and jitter; HTTP 4xx never is. Each request carries `num_ctx`
(Ollama's small default window silently drops the overflow) and a prompt that would not fit is
refused before anything is sent. Every chat request made is recorded as an `LLMCall`, failures
included, and travels with the result or with the exception (`exc.calls`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import httpx
import ollama
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from bot.config import Settings
from bot.records import LLMCall
from bot.tokens import MESSAGE_OVERHEAD_TOKENS, count_message_tokens, count_tokens, truncate_to_tokens

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

# Settings that set each role's context window, named in error messages.
NUM_CTX_SETTING = {
    "generator": "AURA_GENERATOR_NUM_CTX",
    "discriminator": "AURA_DISCRIMINATOR_NUM_CTX",
    "agitator": "AURA_AGITATOR_NUM_CTX",
}


class LLMError(Exception):
    """Any failure of a model request. `calls` holds the chat requests made before it failed."""

    def __init__(self, message: str, *, calls: list[LLMCall] | None = None) -> None:
        super().__init__(message)
        self.calls: list[LLMCall] = list(calls or [])
        self.attempts = 0  # HTTP attempts of the request that failed, retries included


class OllamaUnreachable(LLMError):
    """No connection to the server at OLLAMA_HOST."""


class ModelNotPulled(LLMError):
    def __init__(self, models: list[str], *, calls: list[LLMCall] | None = None) -> None:
        self.models = models
        message = "; ".join(f"model {m} is not pulled: run `ollama pull {m}`" for m in models)
        super().__init__(message, calls=calls)


class InvalidModelOutput(LLMError):
    """The reply did not fit the contract, even after the one repair request."""


class PromptTooLarge(LLMError):
    def __init__(self, *, role: str, prompt_tokens: int, max_output_tokens: int, num_ctx: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_output_tokens = max_output_tokens
        self.num_ctx = num_ctx
        self.overflow = prompt_tokens + max_output_tokens - num_ctx
        setting = NUM_CTX_SETTING.get(role, "the role's num_ctx")
        super().__init__(
            f"the {role} prompt does not fit its context window: about {prompt_tokens} prompt tokens "
            f"+ {max_output_tokens} reserved for the reply = {prompt_tokens + max_output_tokens}, "
            f"{self.overflow} tokens over num_ctx={num_ctx}. Give it less context or raise {setting} "
            f"(the model must support that window)."
        )


class LLMRequestError(LLMError):
    """The server refused the request (HTTP 4xx) or kept failing after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, calls: list[LLMCall] | None = None):
        super().__init__(message, calls=calls)
        self.status_code = status_code


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection errors, timeouts, HTTP 5xx. Never 4xx."""
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code >= 500
    return isinstance(exc, (ConnectionError, httpx.TransportError))


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
    """Validate `content` against `schema`, tolerating a Markdown code fence around the JSON."""
    try:
        return schema.model_validate_json(content)
    except ValidationError:
        stripped = content.strip()
        if not stripped.startswith("```"):
            raise
        body = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        return schema.model_validate_json(body.rsplit("```", 1)[0])


class OllamaLLM:
    """Structured chat requests to one Ollama server.

    `retries` is the number of HTTP attempts per request, the first one included. `wait` replaces the
    backoff between attempts (tests pass `tenacity.wait_none()`).
    """

    def __init__(
        self,
        host: str,
        *,
        timeout_s: float = 600.0,
        retries: int = 4,
        client: ollama.AsyncClient | None = None,
        wait: wait_base | None = None,
    ) -> None:
        if retries < 1:
            raise ValueError("retries counts attempts and must be at least 1")
        self.host = host.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._wait = wait if wait is not None else wait_exponential_jitter(initial=1, max=30, jitter=1)
        self._owns_client = client is None
        # The connect timeout is short: a server that is not there should not cost ten minutes.
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = client or ollama.AsyncClient(host=self.host, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaLLM:
        return cls(settings.ollama_host, timeout_s=settings.ollama_timeout_s, retries=settings.ollama_retries)

    async def aclose(self) -> None:
        """Close the HTTP client (only one this object created)."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> OllamaLLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- before a run ---------------------------------------------------------------------------

    async def ensure_models(self, models: Iterable[str]) -> None:
        """Check with /api/tags that every model is pulled; raise ModelNotPulled naming the missing."""
        wanted = list(dict.fromkeys(m for m in models if m))
        listing, _ = await self._send("listing the pulled models (/api/tags)", self._client.list)
        pulled = {canonical_model_name(m.model) for m in listing.models if m.model}
        missing = [m for m in wanted if canonical_model_name(m) not in pulled]
        if missing:
            raise ModelNotPulled(missing)

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
    ) -> tuple[T, list[LLMCall]]:
        """Ask `model` for a reply shaped like `schema`: (validated reply, one LLMCall per request).

        `parse` reads the reply's text (default: `schema` from JSON, a code fence tolerated); the
        ValidationError it raises for an invalid reply is quoted in the repair request.
        """
        parse = parse or partial(parse_reply, schema)
        prompt_tokens = count_message_tokens(messages)
        if prompt_tokens + max_output_tokens > num_ctx:
            raise PromptTooLarge(
                role=role, prompt_tokens=prompt_tokens, max_output_tokens=max_output_tokens, num_ctx=num_ctx
            )
        options: dict[str, Any] = {"num_ctx": num_ctx, "num_predict": max_output_tokens, "temperature": temperature}
        if seed is not None:
            options["seed"] = seed
        request = {"model": model, "format": schema.model_json_schema(), "options": options}
        calls: list[LLMCall] = []

        response = await self._chat(role, request, messages, calls)
        content = response.message.content or ""
        try:
            return parse(content), calls
        except ValidationError as exc:
            error = describe_validation_error(exc)
        calls[-1].ok, calls[-1].error = False, f"invalid output:\n{error}"

        repair = self._repair_messages(messages, content, error, response.done_reason, num_ctx, max_output_tokens)
        response = await self._chat(role, request, repair, calls, repaired=True)
        content = response.message.content or ""
        try:
            return parse(content), calls
        except ValidationError as exc:
            error = describe_validation_error(exc)
        calls[-1].ok, calls[-1].error = False, f"invalid output:\n{error}"
        raise InvalidModelOutput(
            f"the {role} ({model}) replied with output that does not fit the {schema.__name__} contract, "
            f"even after a repair request. Validation error:\n{error}",
            calls=calls,
        )

    def _repair_messages(
        self,
        messages: list[dict[str, str]],
        reply: str,
        error: str,
        done_reason: str | None,
        num_ctx: int,
        max_output_tokens: int,
    ) -> list[dict[str, str]]:
        """The original conversation, the invalid reply (cut to fit), and what was wrong with it."""
        cut_off = ""
        if done_reason == "length":
            cut_off = (
                f"\nYour reply was cut off at the {max_output_tokens}-token limit, so the JSON is incomplete. "
                "Reply with something shorter: fewer and smaller edits, shorter texts.\n"
            )
        request = {
            "role": "user",
            "content": (
                "Your previous reply is not valid for the required JSON format.\n\n"
                f"Validation error:\n{error}\n{cut_off}\n"
                "Reply again with one JSON object that matches the schema, and nothing else. "
                "Keep what was right and fix what the error names."
            ),
        }
        room = num_ctx - max_output_tokens - count_message_tokens([*messages, request]) - MESSAGE_OVERHEAD_TOKENS
        if room < 64:  # no space to quote the reply: the error alone has to do
            return [*messages, request]
        quoted = reply if count_tokens(reply) <= room else truncate_to_tokens(reply, room, keep="head")
        return [*messages, {"role": "assistant", "content": quoted}, request]

    async def _chat(
        self,
        role: str,
        request: dict[str, Any],
        messages: list[dict[str, str]],
        calls: list[LLMCall],
        *,
        repaired: bool = False,
    ) -> ollama.ChatResponse:
        """One chat request (retried on transient errors), recorded in `calls` whatever happens."""
        model = request["model"]
        call = LLMCall(role=role, model=model, repaired=repaired)
        started = time.perf_counter()

        async def send() -> ollama.ChatResponse:
            return await self._client.chat(messages=messages, stream=False, **request)

        try:
            response, call.attempts = await self._send(f"the {role} request to {model}", send, model=model)
        except LLMError as exc:
            call.attempts = exc.attempts or call.attempts
            call.ok, call.error = False, str(exc)
            call.duration_ms = (time.perf_counter() - started) * 1000
            calls.append(call)
            exc.calls = list(calls)
            raise
        # Ollama's own counters; estimates only where a server leaves them out (e.g. a cached prompt).
        call.prompt_tokens = response.prompt_eval_count or count_message_tokens(messages)
        call.completion_tokens = response.eval_count or count_tokens(response.message.content or "")
        if response.total_duration:
            call.duration_ms = response.total_duration / 1e6
        else:
            call.duration_ms = (time.perf_counter() - started) * 1000
        calls.append(call)
        return response

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
        except (ollama.ResponseError, ConnectionError, httpx.TransportError) as exc:
            error = self._explain(what, exc, attempts, model)
            error.attempts = attempts
            raise error from exc
        except ValueError as exc:  # a body that is not JSON, or not shaped like Ollama's
            error = LLMRequestError(
                f"{what}: the server at OLLAMA_HOST={self.host} did not answer like an Ollama server: {exc}"
            )
            error.attempts = attempts
            raise error from exc
        return result, attempts

    def _explain(self, what: str, exc: Exception, attempts: int, model: str | None) -> LLMError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return OllamaUnreachable(
                f"cannot reach the Ollama server at OLLAMA_HOST={self.host} ({what}, {tries}). "
                "Start it with `ollama serve`, or set OLLAMA_HOST to the address where it runs."
            )
        if isinstance(exc, httpx.TimeoutException):
            return LLMRequestError(
                f"{what}: the Ollama server at {self.host} did not answer within {self.timeout_s:g} s ({tries}). "
                "Large models on a CPU are slow: raise AURA_OLLAMA_TIMEOUT_S or use a smaller model."
            )
        if isinstance(exc, httpx.TransportError):
            return LLMRequestError(f"{what}: the connection to {self.host} failed ({tries}): {exc!r}")
        assert isinstance(exc, ollama.ResponseError)
        if exc.status_code == 404 and model and "not found" in str(exc.error).lower():
            return ModelNotPulled([model])
        if exc.status_code >= 500:
            return LLMRequestError(
                f"{what}: the Ollama server at {self.host} failed with HTTP {exc.status_code} ({tries}): {exc.error}",
                status_code=exc.status_code,
            )
        return LLMRequestError(
            f"{what}: the Ollama server at {self.host} refused it with HTTP {exc.status_code}: {exc.error}",
            status_code=exc.status_code,
        )
