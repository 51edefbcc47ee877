"""Ollama's native API: `/api/chat` with the schema as `format`, `/api/tags`, `/api/show`.

Each request carries `num_ctx` (Ollama's small default window silently drops the overflow), never
more than the model's trained window that `/api/show` reports. Ollama has no tokenizer endpoint: the
token counter is calibrated from each reply's `prompt_eval_count`.
"""

from __future__ import annotations

from typing import Any

import httpx
import ollama
from tenacity.wait import wait_base

from bot.config import Settings
from bot.llm.client import (
    ChatLLM,
    ChatReply,
    ChatRequest,
    LLMError,
    ModelNotPulled,
    OllamaUnreachable,
    ServerHTTPError,
    canonical_model_name,
)


class OllamaLLM(ChatLLM):
    provider = "ollama"
    location = "OLLAMA_HOST"
    server_name = "Ollama server"
    server_kind = "an Ollama server"
    models_endpoint = "/api/tags"

    def __init__(
        self,
        host: str,
        *,
        timeout_s: float = 600.0,
        retries: int = 4,
        client: ollama.AsyncClient | None = None,
        wait: wait_base | None = None,
    ) -> None:
        super().__init__(host, timeout_s=timeout_s, retries=retries, wait=wait)
        self._owns_client = client is None
        # The connect timeout is short: a server that is not there should not cost ten minutes.
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = client or ollama.AsyncClient(host=self.host, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaLLM:
        return cls(settings.ollama_host, timeout_s=settings.ollama_timeout_s, retries=settings.ollama_retries)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def _chat_once(self, request: ChatRequest) -> ChatReply:
        options: dict[str, Any] = {
            "num_ctx": request.num_ctx, "num_predict": request.max_tokens, "temperature": request.temperature,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        try:
            response = await self._client.chat(
                model=request.model, messages=request.messages, format=request.schema, options=options, stream=False
            )
        except ollama.ResponseError as exc:
            raise ServerHTTPError(exc.status_code, exc.error) from exc
        nanos = 1e6
        return ChatReply(
            content=response.message.content or "",
            finish_reason=response.done_reason,
            prompt_tokens=response.prompt_eval_count,
            completion_tokens=response.eval_count,
            prompt_ms=response.prompt_eval_duration / nanos if response.prompt_eval_duration else None,
            generation_ms=response.eval_duration / nanos if response.eval_duration else None,
            total_ms=response.total_duration / nanos if response.total_duration else None,
        )

    async def _model_names(self) -> list[str]:
        try:
            listing = await self._client.list()
        except ollama.ResponseError as exc:
            raise ServerHTTPError(exc.status_code, exc.error) from exc
        return [m.model for m in listing.models if m.model]

    async def _server_window(self, model: str) -> int | None:
        """`<architecture>.context_length` in /api/show's model_info: the window the model was trained on."""
        try:
            shown = await self._client.show(model)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:  # an older server, or an unknown model (the chat will say which)
                return None
            raise ServerHTTPError(exc.status_code, exc.error) from exc
        info = shown.modelinfo or {}
        lengths = [v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)]
        return min(lengths) if lengths else None

    def _has_model(self, model: str, listed: list[str]) -> bool:
        return canonical_model_name(model) in {canonical_model_name(m) for m in listed}

    def _missing(self, models: list[str], listed: list[str] | None) -> LLMError:
        return ModelNotPulled(models)

    def _unreachable(self, what: str) -> LLMError:
        return OllamaUnreachable(
            f"cannot reach the Ollama server at OLLAMA_HOST={self.host} ({what}). "
            "Start it with `ollama serve`, or set OLLAMA_HOST to the address where it runs."
        )
