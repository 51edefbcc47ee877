"""The LLM layer's errors, each with a message that says what to do (imported through bot.llm.client)."""

from __future__ import annotations

import re

import httpx
import ollama

from bot.records import LLMCall

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


class ServerUnreachable(LLMError):
    """No connection to the model server."""


class OllamaUnreachable(ServerUnreachable):
    """No connection to the server at OLLAMA_HOST."""


class ModelNotPulled(LLMError):
    def __init__(self, models: list[str], *, calls: list[LLMCall] | None = None, message: str | None = None) -> None:
        self.models = models
        message = message or "; ".join(f"model {m} is not pulled: run `ollama pull {m}`" for m in models)
        super().__init__(message, calls=calls)


class InvalidModelOutput(LLMError):
    """The reply did not fit the contract, even after the one repair request."""


class PromptTooLarge(LLMError):
    def __init__(
        self, *, role: str, prompt_tokens: int, max_output_tokens: int, num_ctx: int, counted: str = "about"
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_output_tokens = max_output_tokens
        self.num_ctx = num_ctx
        self.overflow = prompt_tokens + max_output_tokens - num_ctx
        setting = NUM_CTX_SETTING.get(role, "the role's num_ctx")
        super().__init__(
            f"the {role} prompt does not fit its context window: {counted} {prompt_tokens} prompt tokens "
            f"+ {max_output_tokens} reserved for the reply = {prompt_tokens + max_output_tokens}, "
            f"{self.overflow} tokens over num_ctx={num_ctx}. Give it less context or raise {setting} "
            f"(the model must support that window)."
        )


class LLMRequestError(LLMError):
    """The server refused the request (HTTP 4xx) or kept failing after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, calls: list[LLMCall] | None = None):
        super().__init__(message, calls=calls)
        self.status_code = status_code


class ServerHTTPError(Exception):
    """An HTTP error status from a model server, with the server's own error text."""

    def __init__(self, status_code: int, error: str) -> None:
        super().__init__(f"HTTP {status_code}: {error}")
        self.status_code = status_code
        self.error = error


# A server refusing a prompt longer than its window: llama-server's "the request exceeds the available
# context size", Ollama's "input length exceeds the context length". Retrying cannot help.
CONTEXT_OVERFLOW = re.compile(r"exceed\w*\b.{0,40}\bcontext|context (length|size|window)\b.{0,20}\bexceed", re.IGNORECASE)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection errors, timeouts, HTTP 5xx. Never 4xx, nor a prompt over the window."""
    if isinstance(exc, ollama.ResponseError | ServerHTTPError):
        return exc.status_code >= 500 and not CONTEXT_OVERFLOW.search(str(exc.error))
    return isinstance(exc, (ConnectionError, httpx.TransportError))
