import json
import socket

import httpx
import ollama
import pytest
import respx
from tenacity import wait_none

from bot.config import Settings
from bot.llm.client import (
    InvalidModelOutput,
    LLMRequestError,
    ModelNotPulled,
    OllamaUnreachable,
    PromptTooLarge,
    canonical_model_name,
    is_transient,
)
from bot.llm.providers.ollama import OllamaLLM
from bot.records import AgitatorGuidance, Proposal, Rubric
from tests.fakes.ollama import FakeOllama

RUBRIC = {"coverage": 0.9, "accuracy": 0.8, "coherence": 1.0, "formatting": 0.7, "issues": [], "comments": ["ok"]}
MESSAGES = [{"role": "system", "content": "You score diffs."}, {"role": "user", "content": "Score this."}]


async def ask(llm: OllamaLLM, schema=Rubric, **overrides):
    kwargs = dict(
        role="discriminator",
        model="qwen2.5:7b",
        messages=MESSAGES,
        schema=schema,
        num_ctx=8192,
        max_output_tokens=1024,
    )
    return await llm.structured(**(kwargs | overrides))


async def test_request_sends_schema_as_format_with_stream_off_and_budget(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", RUBRIC)
    rubric, calls = await ask(fake_ollama.llm(), temperature=0.0, seed=7)

    assert rubric == Rubric(**RUBRIC)
    [body] = fake_ollama.requests
    assert body["format"] == Rubric.model_json_schema()
    assert body["stream"] is False
    assert body["model"] == "qwen2.5:7b"
    assert body["messages"] == MESSAGES
    assert body["options"] == {"num_ctx": 8192, "num_predict": 1024, "temperature": 0.0, "seed": 7}


async def test_seed_left_out_when_not_given(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", RUBRIC)
    await ask(fake_ollama.llm())
    assert "seed" not in fake_ollama.requests[0]["options"]


async def test_call_records_ollama_counters(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", RUBRIC, prompt_eval_count=321, eval_count=45)
    _, [call] = await ask(fake_ollama.llm())

    assert call.role == "discriminator" and call.model == "qwen2.5:7b"
    assert (call.prompt_tokens, call.completion_tokens) == (321, 45)
    # the fake's total_duration: load 12 ms + 0.25 ms per prompt token + 25 ms per output token + 3 ms
    assert call.duration_ms == pytest.approx(12 + 321 * 0.25 + 45 * 25 + 3)
    assert (call.attempts, call.ok, call.repaired, call.error) == (1, True, False, None)


async def test_code_fence_around_json_is_accepted_without_repair(fake_ollama: FakeOllama):
    fake_ollama.queue("AgitatorGuidance", '```json\n{"guidance": "Fix the import in a.py."}\n```')
    guidance, calls = await ask(fake_ollama.llm(), schema=AgitatorGuidance, role="agitator")
    assert guidance.guidance == "Fix the import in a.py."
    assert len(calls) == 1


async def test_invalid_json_gets_one_repair_request_quoting_the_error(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", "I think it is fine", RUBRIC)
    rubric, calls = await ask(fake_ollama.llm())

    assert rubric.coverage == 0.9
    first, repair = fake_ollama.requests
    assert repair["format"] == first["format"] and repair["options"] == first["options"]
    assert repair["messages"][: len(MESSAGES)] == MESSAGES
    assert repair["messages"][-2] == {"role": "assistant", "content": "I think it is fine"}
    assert "Invalid JSON" in repair["messages"][-1]["content"]
    assert [c.repaired for c in calls] == [False, True]
    assert [c.ok for c in calls] == [False, True]
    assert "Invalid JSON" in calls[0].error


async def test_contract_violation_is_quoted_in_the_repair(fake_ollama: FakeOllama):
    bad = {"summary": "s", "changes": [{"file_path": "a.py", "change_type": "update", "rationale": "r"}]}
    good = {
        "summary": "s",
        "changes": [
            {"file_path": "a.py", "change_type": "update", "edits": [{"search": "x = 1", "replace": "x = 2"}]}
        ],
    }
    fake_ollama.queue("generator", bad, good)
    proposal, calls = await ask(fake_ollama.llm(), schema=Proposal, role="generator")

    assert proposal.changes[0].edits[0].replace == "x = 2"
    repair_text = fake_ollama.requests[1]["messages"][-1]["content"]
    assert "changes.0: Value error, a.py: an update needs at least one edit" in repair_text
    assert "errors.pydantic.dev" not in repair_text


async def test_a_given_parser_reads_the_reply_and_its_errors_are_repaired(fake_ollama: FakeOllama):
    def strict_rubric(content: str) -> Rubric:
        rubric = Rubric.model_validate_json(content)  # no code fence tolerated
        return rubric.model_copy(update={"comments": [*rubric.comments, "read by strict_rubric"]})

    fake_ollama.queue("Rubric", f"```json\n{json.dumps(RUBRIC)}\n```", RUBRIC)
    rubric, calls = await ask(fake_ollama.llm(), parse=strict_rubric)

    assert rubric.comments == ["ok", "read by strict_rubric"]
    assert [c.repaired for c in calls] == [False, True]
    assert "Invalid JSON" in fake_ollama.requests[1]["messages"][-1]["content"]
    assert fake_ollama.requests[0]["format"] == Rubric.model_json_schema()


async def test_score_out_of_range_is_repaired(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", RUBRIC | {"accuracy": 8}, RUBRIC)
    await ask(fake_ollama.llm())
    assert "accuracy: Input should be less than or equal to 1" in fake_ollama.requests[1]["messages"][-1]["content"]


async def test_truncated_reply_repair_asks_for_something_shorter(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", '{"coverage": 0.9, "issues": ["a', done_reason="length")
    fake_ollama.queue("Rubric", RUBRIC)
    await ask(fake_ollama.llm())
    assert "cut off at the 1024-token limit" in fake_ollama.requests[1]["messages"][-1]["content"]


async def test_invalid_twice_fails_with_the_error_and_both_calls(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", "nope", RUBRIC | {"coverage": "high"})
    with pytest.raises(InvalidModelOutput) as caught:
        await ask(fake_ollama.llm())

    message = str(caught.value)
    assert "discriminator (qwen2.5:7b)" in message and "Rubric contract" in message
    assert "coverage: Input should be a valid number" in message
    assert len(caught.value.calls) == 2 and len(fake_ollama.requests) == 2
    assert [c.ok for c in caught.value.calls] == [False, False]
    assert all(c.completion_tokens > 0 for c in caught.value.calls)  # tokens spent are still recorded


async def test_server_error_is_retried(fake_ollama: FakeOllama):
    fake_ollama.fail_next(500).queue("Rubric", RUBRIC)
    rubric, [call] = await ask(fake_ollama.llm())
    assert rubric.accuracy == 0.8
    assert len(fake_ollama.requests) == 2 and call.attempts == 2


async def test_timeout_is_retried(fake_ollama: FakeOllama):
    fake_ollama.fail_next("timeout").queue("Rubric", RUBRIC)
    _, [call] = await ask(fake_ollama.llm())
    assert call.attempts == 2


async def test_server_errors_until_retries_run_out(fake_ollama: FakeOllama):
    fake_ollama.fail_next(503, times=3)
    with pytest.raises(LLMRequestError) as caught:
        await ask(fake_ollama.llm(retries=3))

    assert caught.value.status_code == 503
    assert "HTTP 503" in str(caught.value) and "3 attempts" in str(caught.value)
    assert "server busy" in str(caught.value)
    [call] = caught.value.calls
    assert (call.attempts, call.ok) == (3, False)
    assert len(fake_ollama.requests) == 3


async def test_client_error_is_not_retried(fake_ollama: FakeOllama):
    fake_ollama.fail_next(400).queue("Rubric", RUBRIC)
    with pytest.raises(LLMRequestError) as caught:
        await ask(fake_ollama.llm())
    assert caught.value.status_code == 400
    assert "refused it with HTTP 400: invalid format" in str(caught.value)
    assert len(fake_ollama.requests) == 1


async def test_connection_refused_names_ollama_host(fake_ollama: FakeOllama):
    fake_ollama.unreachable = True
    with pytest.raises(OllamaUnreachable) as caught:
        await ask(fake_ollama.llm(retries=2))
    assert "OLLAMA_HOST=http://ollama.test" in str(caught.value)
    assert "ollama serve" in str(caught.value)
    assert caught.value.calls[0].attempts == 2


async def test_connection_refused_by_a_real_closed_port():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OllamaLLM(f"http://127.0.0.1:{port}", retries=2, wait=wait_none())
    try:
        with pytest.raises(OllamaUnreachable, match=rf"OLLAMA_HOST=http://127\.0\.0\.1:{port}"):
            await llm.ensure_models(["qwen2.5:7b"])
    finally:
        await llm.aclose()


async def test_connection_errors_recover_within_retries(fake_ollama: FakeOllama):
    fake_ollama.fail_next("connect", times=2).queue("Rubric", RUBRIC)
    _, [call] = await ask(fake_ollama.llm(retries=3))
    assert call.attempts == 3


async def test_chat_with_a_model_that_is_not_pulled(fake_ollama: FakeOllama):
    fake_ollama.enforce_pulled = True
    with pytest.raises(ModelNotPulled) as caught:
        await ask(fake_ollama.llm())
    assert str(caught.value) == "model qwen2.5:7b is not pulled: run `ollama pull qwen2.5:7b`"
    assert len(fake_ollama.requests) == 1  # a 404 is not retried


async def test_ensure_models_accepts_pulled_models_with_or_without_latest(fake_ollama: FakeOllama):
    fake_ollama.pull("qwen2.5-coder:7b", "llama3")
    await fake_ollama.llm().ensure_models(["qwen2.5-coder:7b", "llama3", "llama3:latest"])
    assert fake_ollama.tags_requests == 1


async def test_ensure_models_names_the_missing_model_exactly(fake_ollama: FakeOllama):
    fake_ollama.pull("qwen2.5-coder:7b")
    with pytest.raises(ModelNotPulled) as caught:
        await fake_ollama.llm().ensure_models(["qwen2.5-coder:7b", "qwen2.5:7b"])
    assert str(caught.value) == "model qwen2.5:7b is not pulled: run `ollama pull qwen2.5:7b`"
    assert caught.value.models == ["qwen2.5:7b"]


async def test_ensure_models_lists_every_missing_model(fake_ollama: FakeOllama):
    with pytest.raises(ModelNotPulled) as caught:
        await fake_ollama.llm().ensure_models(["a:1", "b"])
    assert str(caught.value) == (
        "model a:1 is not pulled: run `ollama pull a:1`; model b is not pulled: run `ollama pull b`"
    )


async def test_ensure_models_retries_a_flaky_tags_endpoint(fake_ollama: FakeOllama):
    fake_ollama.pull("m:1").fail_next(502, endpoint="tags")
    await fake_ollama.llm().ensure_models(["m:1"])
    assert fake_ollama.tags_requests == 2


async def test_prompt_too_large_is_refused_before_any_request(fake_ollama: FakeOllama):
    messages = [{"role": "user", "content": "x" * 3000}]  # about 1000 tokens + 8 of chat template
    with pytest.raises(PromptTooLarge) as caught:
        await ask(fake_ollama.llm(), messages=messages, num_ctx=1024, max_output_tokens=512)

    assert fake_ollama.requests == []
    assert caught.value.overflow == 1008 + 512 - 1024
    assert "496 tokens over num_ctx=1024" in str(caught.value)
    assert "AURA_DISCRIMINATOR_NUM_CTX" in str(caught.value)


async def test_repair_quotes_a_long_reply_only_as_far_as_it_fits(fake_ollama: FakeOllama):
    long_reply = "\n".join(f"garbage line {i}" for i in range(2000))  # ~10k tokens
    fake_ollama.queue("Rubric", long_reply, RUBRIC)
    await ask(fake_ollama.llm(), num_ctx=2048, max_output_tokens=512)
    repair = fake_ollama.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "lines cut to fit" in repair[-2]["content"]
    from bot.llm.tokens import count_message_tokens

    assert count_message_tokens(repair) + 512 <= 2048


def test_transient_errors():
    request = httpx.Request("POST", "http://ollama.test/api/chat")
    assert is_transient(ollama.ResponseError("boom", 500))
    assert is_transient(ollama.ResponseError("busy", 503))
    assert not is_transient(ollama.ResponseError("bad", 400))
    assert not is_transient(ollama.ResponseError("missing", 404))
    assert is_transient(ConnectionError("refused"))
    assert is_transient(httpx.ReadTimeout("slow", request=request))
    assert not is_transient(ValueError("bug"))


def test_canonical_model_names():
    assert canonical_model_name("llama3") == "llama3:latest"
    assert canonical_model_name("qwen2.5-coder:7b") == "qwen2.5-coder:7b"
    assert canonical_model_name("registry.local:5000/team/model") == "registry.local:5000/team/model:latest"


def test_from_settings():
    settings = Settings(ollama_host="http://gpu-box:11434/", ollama_timeout_s=42, ollama_retries=2)
    llm = OllamaLLM.from_settings(settings)
    assert (llm.host, llm.timeout_s, llm.retries) == ("http://gpu-box:11434", 42, 2)
    assert llm._client._client.timeout == httpx.Timeout(42, connect=10.0)


async def test_fake_ollama_shares_a_strict_router_with_other_hosts():
    with respx.mock() as router:  # asserts on exit that every route was called
        github = router.get("https://api.github.test/zen").respond(200, text="Keep it logically awesome.")
        fake = FakeOllama(router).pull("qwen2.5:7b")
        await fake.llm().ensure_models(["qwen2.5:7b"])
        async with httpx.AsyncClient() as client:
            assert (await client.get("https://api.github.test/zen")).text == "Keep it logically awesome."
            assert (await client.get(f"{fake.host}/api/unknown")).status_code == 404
        assert github.called


async def test_a_server_that_is_not_ollama_is_named():
    with respx.mock() as router:
        router.get("http://not-ollama.test/api/tags").respond(200, html="<html>Welcome to nginx!</html>")
        llm = OllamaLLM("http://not-ollama.test", wait=wait_none())
        with pytest.raises(LLMRequestError, match=r"OLLAMA_HOST=http://not-ollama\.test did not answer like an Ollama"):
            await llm.ensure_models(["m"])


async def test_a_server_refusing_a_prompt_over_its_window_is_not_retried_and_tightens_the_count(fake_ollama, monkeypatch):
    from tests.fakes import ollama as fake_module

    monkeypatch.setitem(fake_module.ERROR_TEXTS, 500, "input length exceeds the context length")
    fake_ollama.fail_next(500)
    llm = fake_ollama.llm()
    before = llm.counter("qwen2.5:7b").bytes_per_token
    with pytest.raises(PromptTooLarge, match="the server refused it") as caught:
        await ask(llm, role="generator")
    assert len(fake_ollama.requests) == 1 and caught.value.calls[0].attempts == 1  # a 500, but not retried
    assert "AURA_GENERATOR_NUM_CTX" in str(caught.value)
    assert llm.counter("qwen2.5:7b").bytes_per_token == pytest.approx(before * 0.8)
