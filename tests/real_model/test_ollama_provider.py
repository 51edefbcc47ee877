"""The same run through the ollama provider: Ollama's API served over the same SmolLM2 GGUF
(tests/ollama_over_llama.py), so the native path meets a real model too."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.records import AgitatorGuidance, EpisodeStatus, Proposal, Rubric
from bot.roles.prompting import bounded_schema
from bot.store import Store
from tests.repos import CALC_FILES, make_repo

pytestmark = pytest.mark.real_model
MODEL = "smollm2:135m"
# the reviewers' schemas bounded for the grammar (scores in steps, short texts), the generator's as it is
SCHEMAS = {"Proposal": Proposal.model_json_schema(), "Rubric": bounded_schema(Rubric),
           "AgitatorGuidance": bounded_schema(AgitatorGuidance)}


def test_improve_through_the_ollama_provider_reaches_a_verdict(ollama_over_llama, tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "calc", CALC_FILES)
    data = tmp_path / "data"
    env = {
        "OLLAMA_HOST": ollama_over_llama.host, "AURA_GENERATOR_MODEL": MODEL, "AURA_DISCRIMINATOR_MODEL": MODEL,
        "AURA_AGITATOR_MODEL": MODEL,
        "AURA_GENERATOR_NUM_CTX": "16384",  # more than SmolLM2 was trained on: /api/show says 8192
        "AURA_MAX_OUTPUT_TOKENS": "512", "AURA_MAX_ITERATIONS": "2", "AURA_EDIT_FORMAT": "json-search-replace",
        "AURA_SANDBOX_BACKEND": "bwrap", "AURA_DATA_DIR": str(data),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = main(["improve", str(repo), "--task", "add() returns the wrong result\nadd(2, 3) should be 5", "--dry-run"])

    assert code in (0, 1), capsys.readouterr().err
    store = Store.open(f"sqlite:///{data / 'aura.db'}")
    [run] = store.list_runs()
    [episode] = store.list_episodes(run.run_id)
    store.close()
    assert episode.status in (EpisodeStatus.APPROVED, EpisodeStatus.EXHAUSTED, EpisodeStatus.NO_CHANGE)
    calls = [call for record in episode.iterations for call in record.llm_calls]
    served = [json.loads(line) for line in ollama_over_llama.requests_log.read_text().splitlines()]
    assert calls and len(calls) == len(served)
    for call, request in zip(calls, served, strict=True):
        assert request["format"] == SCHEMAS[request["format"]["title"]]  # schema-constrained
        assert request["options"]["num_ctx"] <= request["window"] == 8192  # never more than the model has
        assert request["options"]["num_predict"] <= 512
        assert (call.provider, call.prompt_tokens, call.completion_tokens) == (
            "ollama", request["prompt_eval_count"], request["eval_count"])
        assert call.prompt_tokens + request["options"]["num_predict"] <= 8192
        assert call.finish_reason == request["done_reason"]
