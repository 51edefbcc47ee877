"""The cycle with what real models bring: their window, their edit format, replies cut off at the token
limit, and a prompt whose stable part comes first (for servers' prompt caches)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.cycle.loop import Cycle, CycleRequest
from bot.records import IterationStatus, Task
from bot.store import Store
from tests.fakes.ollama import FakeOllama
from tests.fakes.sandbox import host_sandbox

GEN, DISC = "qwen2.5-coder:7b", "qwen2.5:7b"
WRONG = {"summary": "s", "changes": [{"file_path": "calc.py", "change_type": "update", "edits": [
    {"search": "    return a - b", "replace": "    return a * b"}], "new_content": None, "rationale": "r"}]}
RIGHT_BLOCKS = "Summary: add adds.\n\ncalc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
GOOD = {"coverage": 0.9, "accuracy": 0.95, "coherence": 0.9, "formatting": 0.9, "issues": [], "comments": []}
WEAK = {"coverage": 0.2, "accuracy": 0.2, "coherence": 0.5, "formatting": 0.9, "issues": ["multiplies"], "comments": []}
GUIDE = {"guidance": "Use + in add.", "focus_points": [], "improvement_plan": []}
TASK = Task(title="add() returns the wrong result", body="add(2, 3) should be 5.", repo="calc")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_iterations": 2})


async def run(settings: Settings, fake: FakeOllama, repo: Path):
    store = Store.open(settings.database_url)
    try:
        cycle = Cycle(settings, fake.llm(), store=store, sandbox_opener=host_sandbox)
        return await cycle.run(CycleRequest(repo_dir=repo, task=TASK, dry_run=True))
    finally:
        store.close()


async def test_a_reply_cut_off_at_the_limit_is_named_in_the_record_and_the_guidance(repo, settings, fake_ollama):
    cut = '{"summary": "Replace the minus with a plus in add so that it re'
    fake_ollama.queue("generator", cut, cut, done_reason="length").queue("generator", WRONG)
    fake_ollama.queue("discriminator", WEAK)
    episode = await run(settings, fake_ollama, repo)

    first = episode.iterations[0]
    assert first.status is IterationStatus.FAILED and "cut off at the token limit" in first.error
    assert [c.finish_reason for c in first.llm_calls] == ["length", "length"]
    second_prompt = fake_ollama.prompt(fake_ollama.requests_for("generator")[-1])
    assert "Your last reply was cut off at the token limit" in second_prompt


async def test_the_edit_format_is_the_models_and_is_recorded(repo, settings, fake_ollama):
    settings = settings.model_copy(update={"edit_formats": {"qwen2.5-coder:*": "search-replace"}})
    fake_ollama.queue("", RIGHT_BLOCKS).queue("discriminator", GOOD)  # a free-text request carries no schema title
    episode = await run(settings, fake_ollama, repo)

    [record] = episode.iterations
    assert record.edit_format == "search-replace" and record.status is IterationStatus.APPROVED
    generator_request = fake_ollama.requests[0]
    assert "format" not in generator_request and "SEARCH/REPLACE" in generator_request["messages"][0]["content"]
    assert "return a + b" in episode.outcomes.best_diff


async def test_num_ctx_never_exceeds_the_models_window(repo, settings, fake_ollama):
    fake_ollama.context_length = 8192  # /api/show: the model was trained on 8192 tokens
    settings = settings.model_copy(update={"generator_num_ctx": 16384, "max_iterations": 1})
    fake_ollama.queue("generator", WRONG).queue("discriminator", WEAK)
    await run(settings, fake_ollama, repo)
    assert fake_ollama.requests_for("generator")[0]["options"]["num_ctx"] == 8192


async def test_the_stable_part_of_the_prompt_comes_first_and_stays_byte_identical(repo, settings, fake_ollama):
    fake_ollama.queue("generator", WRONG, WRONG).queue("discriminator", WEAK, WEAK).queue("agitator", GUIDE)
    await run(settings, fake_ollama, repo)

    first, second = (r["messages"] for r in fake_ollama.requests_for("generator"))
    assert first[0] == second[0]  # the system prompt
    stable_1, changing_1 = first[1]["content"].split("<guidance>")
    stable_2, changing_2 = second[1]["content"].split("<guidance>")
    assert stable_1 == stable_2 and "<repository_context>" in stable_1  # task and repository context
    # the guidance only grows: attempt 1's entries start attempt 2's, byte for byte, so the cache reaches further
    guidance_1, guidance_2 = (part.split("</guidance>")[0].rstrip("\n") for part in (changing_1, changing_2))
    assert "tests failing on the base commit" in guidance_1
    assert guidance_2.startswith(guidance_1) and len(guidance_2) > len(guidance_1)
    assert "(none: this is the first attempt)" in changing_1
    assert "Your previous attempt (iteration 1)" in changing_2 and "return a * b" in changing_2
    assert changing_2.index("</guidance>") < changing_2.index("<previous_attempt>")  # what changes most, last


async def test_the_generators_budget_is_fixed_at_the_first_attempt(repo, settings, fake_ollama, monkeypatch):
    """The token counter calibrates from the server's count of attempt 1's prompt (here: a tokenizer that
    needs far more tokens than estimated); the task's part of attempt 2 is still built at attempt 1's budget,
    so its bytes, and a server's prompt cache of them, stay the same (python-slugify with SmolLM2 showed
    other excerpt lines in attempt 2 and reused 37 % of the prompt)."""
    import bot.cycle.steps as steps

    budgets = []

    def spy(index, task, previous, budget, history):
        budgets.append(budget)
        return real(index, task, previous, budget, history)

    real = steps.generator_context
    monkeypatch.setattr(steps, "generator_context", spy)
    fake_ollama.queue("generator", WRONG, prompt_eval_count=20_000).queue("generator", WRONG)
    fake_ollama.queue("discriminator", WEAK, WEAK).queue("agitator", GUIDE)
    await run(settings, fake_ollama, repo)
    assert len(budgets) == 2 and budgets[0] == budgets[1]
