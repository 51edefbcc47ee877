"""The reviewers' request schemas: what a grammar can enforce that the pydantic contract alone does not."""

from __future__ import annotations

from bot.records import AgitatorGuidance, Rubric, Task
from bot.roles import Agitator, Discriminator
from bot.roles.prompting import SCORE_STEPS, bounded_schema
from tests.fakes.ollama import FakeOllama

RUBRIC = {"coverage": 0.5, "accuracy": 0.3, "coherence": 1.0, "formatting": 0.9, "issues": ["x"], "comments": []}


def test_scores_are_steps_and_texts_and_lists_are_bounded():
    schema = bounded_schema(Rubric)
    assert schema["properties"]["coverage"] == {"enum": SCORE_STEPS} and SCORE_STEPS[0] == 0 and SCORE_STEPS[-1] == 1
    assert schema["properties"]["issues"]["maxItems"] == 3 and schema["properties"]["issues"]["items"]["maxLength"] == 150
    assert schema["required"] == Rubric.model_json_schema()["required"] and schema["title"] == "Rubric"
    guidance = bounded_schema(AgitatorGuidance, max_chars=200)
    assert guidance["properties"]["guidance"]["maxLength"] == 200
    assert Rubric.model_json_schema()["properties"]["coverage"]["maximum"] == 1  # the contract is untouched


async def test_discriminator_and_agitator_send_the_bounded_schemas(fake_ollama: FakeOllama):
    fake_ollama.queue("Rubric", RUBRIC).queue("AgitatorGuidance", {"guidance": "Multiply by quantity."})
    llm = fake_ollama.llm()
    options = {"model": "qwen2.5:7b", "num_ctx": 8192, "max_output_tokens": 512}
    rubric, _ = await Discriminator(llm, **options).score(Task(title="t"), "diff", "1 passed")
    guidance, _ = await Agitator(llm, **options).guide(Task(title="t"), "diff", "1 passed", rubric, [])

    assert rubric == Rubric(**RUBRIC) and guidance.guidance == "Multiply by quantity."
    assert [r["format"] for r in fake_ollama.requests] == [bounded_schema(Rubric), bounded_schema(AgitatorGuidance)]
