"""The openai provider at the HTTP level, against the servers' flavours (tests/fakes/openai.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from bot.config import Settings
from bot.llm.client import (
    InvalidModelOutput,
    LLMRequestError,
    ModelNotPulled,
    PromptTooLarge,
    ServerUnreachable,
)
from bot.llm.providers import RoleRouter, build_llm
from bot.llm.providers.ollama import OllamaLLM
from bot.llm.providers.openai import OpenAILLM
from bot.records import Rubric
from tests.fakes.openai import FakeOpenAI, server_tokens

RUBRIC = {"coverage": 0.9, "accuracy": 0.8, "coherence": 1.0, "formatting": 0.7, "issues": [], "comments": []}
MESSAGES = [{"role": "system", "content": "You score diffs. " * 30}, {"role": "user", "content": "Score this diff."}]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


async def ask(llm: OpenAILLM, **overrides):
    kwargs = dict(role="discriminator", model="m", messages=MESSAGES, schema=Rubric, num_ctx=8192, max_output_tokens=512)
    return await llm.structured(**(kwargs | overrides))


async def test_json_schema_dialect_with_the_servers_counts_and_timings(router):
    fake = FakeOpenAI(router, flavour="llama-server").queue(RUBRIC)
    fake.cached = 40
    rubric, [call] = await ask(fake.llm(), temperature=0.0, seed=3)

    assert rubric == Rubric(**RUBRIC)
    [body] = fake.requests
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "Rubric", "schema": Rubric.model_json_schema(), "strict": True}
    }
    assert (body["max_tokens"], body["temperature"], body["seed"], body["stream"]) == (512, 0.0, 3, False)
    assert "num_ctx" not in body  # the server's window is its own
    prompt = sum(server_tokens(m["content"]) + 4 for m in MESSAGES)
    assert (call.provider, call.prompt_tokens, call.counted_by_server) == ("openai", prompt, True)
    assert (call.cached_tokens, call.prompt_ms, call.generation_ms, call.finish_reason) == (40, 120.5, 480.25, "stop")


async def test_llama_cpp_python_refuses_json_schema_and_gets_json_object_from_then_on(router):
    fake = FakeOpenAI(router, flavour="llama-cpp-python").queue(RUBRIC, RUBRIC)
    llm = fake.llm()
    _, [call] = await ask(llm)
    await ask(llm)

    types = [r["response_format"]["type"] for r in fake.requests]
    assert types == ["json_schema", "json_object", "json_object"]  # found out once, then kept
    assert fake.requests[1]["response_format"]["schema"] == Rubric.model_json_schema()
    assert llm.dialect == "json_object" and call.attempts == 1


async def test_a_chosen_dialect_is_sent_as_chosen(router):
    fake = FakeOpenAI(router, flavour="vllm").queue(RUBRIC)
    fake.cached = 17
    _, [call] = await ask(fake.llm(dialect="json_object"))
    assert fake.requests[0]["response_format"]["type"] == "json_object"
    assert call.cached_tokens == 17  # vLLM: usage.prompt_tokens_details.cached_tokens


@pytest.mark.parametrize(("flavour", "window"), [("llama-server", 4096), ("vllm", 4096), ("lmstudio", 4096),
                                                 ("llama-cpp-python", None)])
async def test_the_window_comes_from_the_server_and_caps_the_setting(router, flavour, window):
    llm = FakeOpenAI(router, flavour=flavour, n_ctx=4096).llm()
    assert await llm.context_window("m", 16384) == (window or 16384)
    assert await llm.context_window("m", 2048) == 2048  # a smaller setting stands


async def test_prompts_are_counted_by_the_servers_tokenizer_and_calibrate_the_counter(router):
    fake = FakeOpenAI(router, flavour="llama-cpp-python")
    llm = fake.llm()
    counted, exact = await llm.count_prompt("m", MESSAGES)
    text = "\n".join(m["content"] for m in MESSAGES)
    assert exact and counted == server_tokens(text) + 8 * len(MESSAGES)
    assert llm.counter("m").bytes_per_token < 2.1  # the fake's tokenizer: 2 bytes per token
    assert "/tokenize" in fake.paths and "/extras/tokenize/count" in fake.paths
    await llm.count_prompt("m", MESSAGES)
    assert fake.paths.count("/tokenize") == 1  # the endpoint that answered is remembered


async def test_without_a_tokenizer_usage_calibrates_the_estimate(router):
    fake = FakeOpenAI(router, flavour="lmstudio").queue(RUBRIC)
    llm = fake.llm()
    assert await llm.count_prompt("m", MESSAGES) == (llm.counter("m").count_messages(MESSAGES), False)
    assert llm.counter("m").bytes_per_token == 3
    await ask(llm)
    assert llm.counter("m").bytes_per_token < 2.1 and llm.counter("m").measured


async def test_a_prompt_over_the_known_window_is_refused_before_sending(router):
    fake = FakeOpenAI(router, flavour="llama-server", n_ctx=1024)
    llm = fake.llm()
    with pytest.raises(PromptTooLarge, match=r"exactly \d+ prompt tokens .* over num_ctx=1024"):
        await ask(llm, messages=[{"role": "user", "content": "x" * 3000}],
                  num_ctx=await llm.context_window("m", 8192))
    assert fake.requests == []


async def test_a_refusal_over_the_window_is_prompt_too_large_and_teaches_the_window(router):
    fake = FakeOpenAI(router, flavour="lmstudio", n_ctx=2048).fail_next("context")
    llm = fake.llm()
    with pytest.raises(PromptTooLarge) as caught:
        await ask(llm, role="generator", num_ctx=8192)
    assert caught.value.num_ctx == 2048 and "AURA_GENERATOR_NUM_CTX" in str(caught.value)
    assert len(fake.requests) == 1 and not caught.value.calls[0].ok  # not retried
    assert llm._windows["m"] == 2048


async def test_a_reply_cut_off_at_the_limit_is_named_in_the_repair_and_the_error(router):
    fake = FakeOpenAI(router).queue('{"coverage": 0.9, "accur', '{"coverage": 0.9, "acc', finish_reason="length")
    with pytest.raises(InvalidModelOutput, match=r"output \(cut off at the token limit\)") as caught:
        await ask(fake.llm())
    first, repair = caught.value.calls
    assert first.finish_reason == "length" and first.error.startswith("truncated: the reply was cut off at the 512")
    assert "cut off at the 512-token limit" in fake.requests[1]["messages"][-1]["content"]
    assert repair.repaired and repair.completion_tokens == 512


async def test_server_errors_are_retried_and_client_errors_are_not(router):
    fake = FakeOpenAI(router).fail_next(503).queue(RUBRIC)
    _, [call] = await ask(fake.llm())
    assert call.attempts == 2
    fake.fail_next(400)
    with pytest.raises(LLMRequestError, match="OpenAI-compatible server at http://openai.test/v1 refused it with HTTP 400"):
        await ask(fake.llm())


async def test_an_unreachable_server_names_the_setting(router):
    fake = FakeOpenAI(router).fail_next("connect", times=2)
    with pytest.raises(ServerUnreachable, match=r"AURA_OPENAI_BASE_URL=http://openai\.test/v1 .*2 attempts"):
        await ask(fake.llm(retries=2))


async def test_models_are_listed_and_a_missing_one_named_with_what_is_served(router):
    fake = FakeOpenAI(router, models=("qwen2.5-coder-7b-instruct", "llama-3.2-3b"))
    llm = fake.llm()
    await llm.ensure_models(["qwen2.5-coder-7b-instruct"])
    with pytest.raises(ModelNotPulled, match=r"model qwen2.5:7b is not served .* It serves: qwen2.5-coder-7b-instruct, llama-3.2-3b\."):
        await llm.ensure_models(["qwen2.5-coder-7b-instruct", "qwen2.5:7b"])
    with pytest.raises(ModelNotPulled, match="qwen2.5:7b is not served"):  # a chat with it: the server's 404
        await ask(llm, model="qwen2.5:7b")


async def test_the_api_key_is_sent_as_a_bearer_token(router):
    fake = FakeOpenAI(router, api_key="sk-local").queue(RUBRIC)
    await ask(fake.llm(api_key="sk-local"))
    with pytest.raises(LLMRequestError, match="HTTP 401: Incorrect API key"):
        await ask(fake.llm(api_key="wrong"))


def test_settings_choose_the_provider_per_role(monkeypatch):
    monkeypatch.setenv("AURA_LLM_PROVIDER", "openai")
    monkeypatch.setenv("AURA_OPENAI_BASE_URL", "http://gpu:8000/v1/")
    monkeypatch.setenv("AURA_OPENAI_API_KEY", "k")
    llm = build_llm(Settings())
    assert isinstance(llm, OpenAILLM) and llm.host == "http://gpu:8000/v1" and llm.root == "http://gpu:8000"
    monkeypatch.setenv("AURA_GENERATOR_PROVIDER", "ollama")
    routed = build_llm(Settings())
    assert isinstance(routed, RoleRouter)
    assert isinstance(routed.for_role("generator"), OllamaLLM)
    assert routed.for_role("discriminator") is routed.for_role("agitator")
    assert isinstance(routed.for_role("agitator"), OpenAILLM)
    monkeypatch.delenv("AURA_OPENAI_BASE_URL")
    assert Settings().openai_base_url == "http://localhost:1234/v1"  # LM Studio's
