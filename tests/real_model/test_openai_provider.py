"""The plumbing against a real model: llama-cpp-python's server with SmolLM2-135M, through the openai
provider. These tests check what the bot does with a real server (constrained requests, its counts,
its window, cut-off replies), not whether a 135M model solves anything."""

from __future__ import annotations

import pytest
from tenacity import wait_none

from bot.cli import main
from bot.llm.client import InvalidModelOutput, PromptTooLarge
from bot.llm.providers.openai import OpenAILLM
from bot.records import AgitatorGuidance, EpisodeStatus, LLMCall, Proposal, Rubric, Task
from bot.roles import Agitator, Discriminator
from bot.store import Store
from tests.llama_server import MODEL_ALIAS, N_CTX
from tests.repos import CALC_FILES, make_repo

pytestmark = pytest.mark.real_model

DIFF = "--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,3 @@\n def add(a, b):\n     \"\"\"Return the sum of a and b.\"\"\"\n-    return a - b\n+    return a + b\n"
CHECKS = "tests: 2 passed, 0 failed (pytest)"


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict, dict]]:
    """(request body, response body) of every chat completion the openai provider got an answer to."""
    seen: list[tuple[dict, dict]] = []
    post = OpenAILLM._post

    async def recording(self: OpenAILLM, url: str, body: dict) -> object:
        data = await post(self, url, body)
        if url.endswith("/chat/completions"):
            seen.append((body, data))
        return data

    monkeypatch.setattr(OpenAILLM, "_post", recording)
    return seen


def assert_served(call: LLMCall, request: dict, response: dict) -> None:
    """A call the server constrained to a schema, counted, and kept within its window."""
    assert request["response_format"]["type"] == "json_object"  # the dialect llama-cpp-python accepts
    assert request["response_format"]["schema"]["title"] in {"Proposal", "Rubric", "AgitatorGuidance"}
    usage = response["usage"]
    assert (call.provider, call.prompt_tokens, call.completion_tokens) == ("openai", usage["prompt_tokens"], usage["completion_tokens"])
    assert call.counted_by_server
    assert usage["prompt_tokens"] + request["max_tokens"] <= N_CTX


def test_improve_through_the_openai_provider_reaches_a_verdict(llama_server, exchanges, tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "calc", CALC_FILES)
    data = tmp_path / "data"
    env = {
        "AURA_LLM_PROVIDER": "openai", "AURA_OPENAI_BASE_URL": llama_server.base_url,
        "AURA_GENERATOR_MODEL": MODEL_ALIAS, "AURA_DISCRIMINATOR_MODEL": MODEL_ALIAS, "AURA_AGITATOR_MODEL": MODEL_ALIAS,
        # the server's --n_ctx (llama-cpp-python does not report its window)
        "AURA_GENERATOR_NUM_CTX": str(N_CTX), "AURA_DISCRIMINATOR_NUM_CTX": str(N_CTX), "AURA_AGITATOR_NUM_CTX": str(N_CTX),
        "AURA_MAX_OUTPUT_TOKENS": "512", "AURA_MAX_ITERATIONS": "2", "AURA_EDIT_FORMAT": "json-search-replace",
        "AURA_SANDBOX_BACKEND": "bwrap", "AURA_DATA_DIR": str(data),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = main(["improve", str(repo), "--task", "add() returns the wrong result\nadd(2, 3) should be 5", "--dry-run"])

    assert code in (0, 1), capsys.readouterr().err  # approved, no change, or not approved: a verdict, no error
    store = Store.open(f"sqlite:///{data / 'aura.db'}")
    [run] = store.list_runs()
    [episode] = store.list_episodes(run.run_id)
    assert episode.status in (EpisodeStatus.APPROVED, EpisodeStatus.EXHAUSTED, EpisodeStatus.NO_CHANGE)
    store.close()
    calls = [call for record in episode.iterations for call in record.llm_calls]
    assert calls and len(calls) == len(exchanges)  # every request recorded, none made outside the records
    assert {r.edit_format for r in episode.iterations} == {"json-search-replace"}
    for call, (request, response) in zip(calls, exchanges, strict=True):  # in the order they were made
        assert_served(call, request, response)
    assert calls[0].role == "generator"


async def test_discriminator_and_agitator_requests_are_constrained_and_counted(llama_server, exchanges):
    """Whether a 135M model keeps scores within [0, 1] is its business (the grammar llama-cpp-python
    builds from the schema does not bound numbers): a reply outside the contract must end as
    InvalidModelOutput after one repair, with both calls on record."""
    task = Task(title="add() returns the wrong result", body="add(2, 3) should be 5")
    options = {"model": MODEL_ALIAS, "num_ctx": N_CTX, "max_output_tokens": 384, "seed": 1}
    calls = []
    async with OpenAILLM(llama_server.base_url, wait=wait_none()) as llm:
        for ask in (lambda: Discriminator(llm, **options).score(task, DIFF, CHECKS),
                    lambda: Agitator(llm, **options).guide(task, DIFF, CHECKS, None, [])):
            try:
                reply, made = await ask()
                assert isinstance(reply, Rubric | AgitatorGuidance)
            except InvalidModelOutput as exc:
                made = exc.calls
                assert len(made) == 2 and made[1].repaired and "contract" in str(exc)
            calls += made

    assert llm.dialect == "json_object"  # found out on the first request: this server refuses json_schema
    assert len(calls) == len(exchanges)
    for call, (request, response) in zip(calls, exchanges, strict=True):
        assert_served(call, request, response)


async def test_prompts_are_counted_by_the_servers_tokenizer(llama_server):
    messages = [
        {"role": "system", "content": "You review Python diffs and score them.\n" * 20},
        {"role": "user", "content": "def add(a, b):\n    return a - b\n" * 40},
    ]
    async with OpenAILLM(llama_server.base_url, wait=wait_none()) as llm:
        counted, exact = await llm.count_prompt(MODEL_ALIAS, messages)
        try:
            _, [call] = await llm.structured(role="discriminator", model=MODEL_ALIAS, messages=messages,
                                             schema=Rubric, num_ctx=N_CTX, max_output_tokens=200)
        except InvalidModelOutput as exc:  # scores out of range: the counts are what this test is about
            call = exc.calls[0]

    assert exact
    # the contents by the server's tokenizer plus a few template tokens per message, against the server's usage
    assert call.prompt_tokens <= counted <= call.prompt_tokens + 12
    # this model's tokenizer is denser than 3 bytes per token: the counter learned it
    assert llm.counter(MODEL_ALIAS).bytes_per_token < 3.0


async def test_a_reply_cut_off_at_the_token_limit_is_named_as_such(llama_server):
    messages = [{"role": "user", "content": "Fix add() in calc.py: it subtracts. Explain every step at length."}]
    async with OpenAILLM(llama_server.base_url, wait=wait_none()) as llm:
        with pytest.raises(InvalidModelOutput) as caught:
            await llm.structured(role="generator", model=MODEL_ALIAS, messages=messages, schema=Proposal,
                                 num_ctx=N_CTX, max_output_tokens=12)

    assert "cut off at the token limit" in str(caught.value)
    first, repair = caught.value.calls
    assert (first.finish_reason, repair.finish_reason) == ("length", "length")
    assert first.error.startswith("truncated: the reply was cut off at the 12-token limit")
    assert repair.repaired and repair.completion_tokens == 12


async def test_a_window_larger_than_the_servers_is_refused_and_learned(llama_server):
    messages = [{"role": "user", "content": "x = 1\n" * 5000}]  # about 10,000 tokens for this tokenizer
    async with OpenAILLM(llama_server.base_url, wait=wait_none()) as llm:
        assert await llm.context_window(MODEL_ALIAS, 32768) == 32768  # this server does not say
        with pytest.raises(PromptTooLarge) as caught:
            await llm.structured(role="generator", model=MODEL_ALIAS, messages=messages, schema=Proposal,
                                 num_ctx=32768, max_output_tokens=256)
        assert await llm.context_window(MODEL_ALIAS, 32768) == N_CTX  # learned from the refusal

        # with the window known, the next such prompt is refused before anything is sent
        sent = len(caught.value.calls)
        with pytest.raises(PromptTooLarge, match=f"num_ctx={N_CTX}") as again:
            await llm.structured(role="generator", model=MODEL_ALIAS, messages=messages, schema=Proposal,
                                 num_ctx=await llm.context_window(MODEL_ALIAS, 32768), max_output_tokens=256)
    assert "exactly" in str(again.value) and again.value.calls == [] and sent == 1
    assert f"num_ctx={N_CTX}" in str(caught.value) and "AURA_GENERATOR_NUM_CTX" in str(caught.value)


async def test_models_are_listed_through_v1_models(llama_server):
    async with OpenAILLM(llama_server.base_url, wait=wait_none()) as llm:
        await llm.ensure_models([MODEL_ALIAS])
        with pytest.raises(Exception, match=rf"model qwen2.5:7b is not served .* It serves: {MODEL_ALIAS}\."):
            await llm.ensure_models([MODEL_ALIAS, "qwen2.5:7b"])
