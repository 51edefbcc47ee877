"""OpenAI-compatible servers: LM Studio, llama.cpp's llama-server, llama-cpp-python's server, vLLM, SGLang.

`/v1/chat/completions` with the schema in `response_format`, in one of two dialects:

- "json_schema": `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` (OpenAI, LM Studio,
  llama-server, vLLM, SGLang);
- "json_object": `{"type": "json_object", "schema": ...}` (llama-cpp-python accepts only this one).

With the dialect "auto" the first request says json_schema; a server that refuses it over its
`response_format` gets the same request again in json_object, and keeps that dialect. Models come from
`/v1/models`; token counts from `usage`. Where the server has them, the context window comes from
llama-server's `/props`, vLLM's `max_model_len` or LM Studio's `/api/v0/models`, and prompts are
counted by its tokenizer (`/tokenize`, llama-cpp-python's `/extras/tokenize/count`). A server that
refuses a prompt as too long (OpenAI's `context_length_exceeded`) is believed: its window is kept
and the request ends in PromptTooLarge.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from tenacity.wait import wait_base

from bot.config import Settings
from bot.llm.client import (
    ChatLLM,
    ChatReply,
    ChatRequest,
    LLMError,
    ModelNotPulled,
    PromptTooLarge,
    ServerHTTPError,
    ServerUnreachable,
)
from bot.llm.tokens import MESSAGE_OVERHEAD_TOKENS

Dialect = Literal["auto", "json_schema", "json_object"]
MAX_CONTEXT = re.compile(r"maximum context length is (\d+) tokens.*?requested (\d+) tokens", re.DOTALL)
TOKENIZERS = ("/tokenize", "/extras/tokenize/count")  # llama-server and vLLM; llama-cpp-python


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: dict[str, Any] | None = None  # {"cached_tokens": N} (vLLM, OpenAI)


class Timings(BaseModel):  # llama-server's own counters
    prompt_n: int | None = None
    prompt_ms: float | None = None
    predicted_ms: float | None = None
    cache_n: int | None = None


class Message(BaseModel):
    content: str | None = None


class Choice(BaseModel):
    message: Message
    finish_reason: str | None = None


class Completion(BaseModel):
    choices: list[Choice] = Field(min_length=1)
    usage: Usage | None = None
    timings: Timings | None = None


class ModelEntry(BaseModel):
    id: str
    max_model_len: int | None = None  # vLLM


class ModelList(BaseModel):
    data: list[ModelEntry]


class OpenAILLM(ChatLLM):
    provider = "openai"
    location = "AURA_OPENAI_BASE_URL"
    server_name = "OpenAI-compatible server"
    server_kind = "an OpenAI-compatible server"
    models_endpoint = "/v1/models"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        dialect: Dialect = "auto",
        timeout_s: float = 600.0,
        retries: int = 4,
        wait: wait_base | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, wait=wait)
        self.root = self.host.removesuffix("/v1")  # where the servers' own endpoints live
        self.dialect: Dialect = dialect
        self._owns_client = client is None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = client or httpx.AsyncClient(timeout=timeout, headers=headers)
        self._tokenizer: str | None = None  # the endpoint that worked; "" when none does
        self._listed: dict[str, ModelEntry] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAILLM:
        return cls(
            settings.openai_base_url, api_key=settings.openai_api_key, dialect=settings.openai_json_dialect,
            timeout_s=settings.ollama_timeout_s, retries=settings.ollama_retries,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # --- chat -----------------------------------------------------------------------------------

    async def _chat_once(self, request: ChatRequest) -> ChatReply:
        dialect = "json_schema" if self.dialect == "auto" else self.dialect
        if request.schema is None:  # free text: no dialect to find out
            dialect = "text"
        try:
            data = await self._complete(request, dialect)
        except ServerHTTPError as exc:
            if self.dialect != "auto" or dialect == "text" or "response_format" not in exc.error:
                raise
            self.dialect = "json_object"  # llama-cpp-python: only {"type": "json_object", "schema": ...}
            data = await self._complete(request, "json_object")
        if self.dialect == "auto" and dialect == "json_schema":
            self.dialect = "json_schema"
        completion = Completion.model_validate(data)
        choice, usage, timings = completion.choices[0], completion.usage or Usage(), completion.timings
        cached = (usage.prompt_tokens_details or {}).get("cached_tokens")
        if timings is not None and timings.cache_n is not None:
            cached = timings.cache_n
        return ChatReply(
            content=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=cached,
            prompt_ms=timings.prompt_ms if timings else None,
            generation_ms=timings.predicted_ms if timings else None,
        )

    async def _complete(self, request: ChatRequest, dialect: str) -> Any:
        try:
            return await self._post(f"{self.host}/chat/completions", self._body(request, dialect))
        except ServerHTTPError as exc:
            raise self._context_error(request, exc) or exc

    def _body(self, request: ChatRequest, dialect: str) -> dict[str, Any]:
        schema = request.schema
        body: dict[str, Any] = {
            "model": request.model, "messages": request.messages, "stream": False,
            "max_tokens": request.max_tokens, "temperature": request.temperature,
        }
        if schema is not None and dialect == "json_schema":
            name = re.sub(r"[^\w-]", "_", str(schema.get("title", "reply")))
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        elif schema is not None:
            body["response_format"] = {"type": "json_object", "schema": schema}
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def _context_error(self, request: ChatRequest, exc: ServerHTTPError) -> LLMError | None:
        """A refusal over the window: the server's window is remembered, the request is PromptTooLarge."""
        match = MAX_CONTEXT.search(exc.error)
        if exc.status_code >= 500 or match is None:
            return None
        window, requested = int(match.group(1)), int(match.group(2))
        self._windows[request.model] = window
        prompt_tokens = max(0, requested - request.max_tokens)
        return PromptTooLarge(role=request.role or "model", prompt_tokens=prompt_tokens, max_output_tokens=request.max_tokens,
                              num_ctx=window, counted="(the server counted)")

    # --- models, window, tokens -----------------------------------------------------------------

    async def _model_names(self) -> list[str]:
        listing = ModelList.model_validate(await self._get(f"{self.host}/models"))
        self._listed = {entry.id: entry for entry in listing.data}
        return list(self._listed)

    async def _server_window(self, model: str) -> int | None:
        if not self._listed:
            await self._model_names()
        entry = self._listed.get(model)
        if entry is not None and entry.max_model_len:
            return entry.max_model_len  # vLLM
        props = await self._get_optional(f"{self.root}/props")  # llama-server
        if isinstance(props, dict):
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
            if isinstance(n_ctx, int) and n_ctx > 0:
                return n_ctx
        lmstudio = await self._get_optional(f"{self.root}/api/v0/models/{model}")  # LM Studio
        if isinstance(lmstudio, dict):
            for key in ("loaded_context_length", "max_context_length"):
                if isinstance(lmstudio.get(key), int) and lmstudio[key] > 0:
                    return lmstudio[key]
        return None

    async def _server_count(self, model: str, messages: list[dict[str, str]]) -> int | None:
        """The contents' tokens by the server's tokenizer, plus the chat template's markers per message."""
        if self._tokenizer == "":
            return None
        text = "\n".join(m.get("content", "") for m in messages)
        body = {"model": model, "content": text, "prompt": text, "input": text, "add_special": False}
        for path in [self._tokenizer] if self._tokenizer else TOKENIZERS:
            try:
                data = await self._post(f"{self.root}{path}", body)
            except ServerHTTPError as exc:
                if exc.status_code >= 500:
                    raise
                continue
            count = data.get("count") if isinstance(data.get("count"), int) else len(data.get("tokens") or [])
            if count or not text:
                self._tokenizer = path
                return count + MESSAGE_OVERHEAD_TOKENS * len(messages)  # the chat template's role markers
        self._tokenizer = ""
        return None

    def _has_model(self, model: str, listed: list[str]) -> bool:
        return model in listed

    def _missing(self, models: list[str], listed: list[str] | None) -> LLMError:
        names = ", ".join(listed) if listed else "(none)"
        message = "; ".join(
            f"model {m} is not served by the OpenAI-compatible server at AURA_OPENAI_BASE_URL={self.host}" for m in models
        )
        if listed is not None:
            message += f". It serves: {names}. Load the model there, or name one of these in the model setting."
        return ModelNotPulled(models, message=message)

    def _unreachable(self, what: str) -> LLMError:
        return ServerUnreachable(
            f"cannot reach the OpenAI-compatible server at AURA_OPENAI_BASE_URL={self.host} ({what}). "
            "Start it (LM Studio's local server, llama-server, vLLM, ...), or set AURA_OPENAI_BASE_URL to its "
            "address, /v1 included."
        )

    @staticmethod
    def _is_missing_model(error: str) -> bool:
        text = error.lower()
        return "model" in text and ("not found" in text or "does not exist" in text)

    # --- HTTP -----------------------------------------------------------------------------------

    async def _get(self, url: str) -> Any:
        return self._json(await self._client.get(url))

    async def _get_optional(self, url: str) -> Any:
        """GET an endpoint only some servers have: None where it is missing."""
        try:
            return await self._get(url)
        except (ServerHTTPError, ValueError) as exc:
            if isinstance(exc, ServerHTTPError) and exc.status_code >= 500:
                raise
            return None

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        return self._json(await self._client.post(url, json=body))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ServerHTTPError(response.status_code, _error_text(response))
        return response.json()  # ValueError for a body that is not JSON


def _error_text(response: httpx.Response) -> str:
    """The server's error message: OpenAI's {"error": {"message"}}, or {"error": "..."}, or the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error)[:2000]
    return str(error)[:2000]
