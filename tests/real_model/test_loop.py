"""The whole loop with a real model: SmolLM2-135M writes an edit (json-line-edits, constrained to the
lines its prompt showed) that applies, the sandbox runs the repository's tests on it, and the same model
scores the result. Whether a 135M model fixes the bug is not the point; that every step after the
generator runs on a real model's output is."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.cycle.episode import EpisodeRunner
from bot.cycle.loop import CycleRequest
from bot.llm.providers import build_llm
from bot.records import IterationStatus
from bot.store import Store
from tests.llama_server import MODEL_ALIAS, N_CTX
from tests.repos import CALC_FILES, CALC_TASK, make_repo

pytestmark = pytest.mark.real_model


async def test_a_smollm2_attempt_reaches_the_sandbox_and_is_scored_by_the_model(llama_server, tmp_path):
    repo = make_repo(tmp_path / "calc", CALC_FILES)
    settings = Settings(
        _env_file=None, llm_provider="openai", openai_base_url=llama_server.base_url, generator_model=MODEL_ALIAS,
        discriminator_model=MODEL_ALIAS, agitator_model=MODEL_ALIAS, generator_num_ctx=N_CTX,
        discriminator_num_ctx=N_CTX, agitator_num_ctx=N_CTX, max_output_tokens=384, max_iterations=1,
        edit_format="json-line-edits", data_dir=tmp_path / "data", sandbox={"backend": "bwrap"},
    )
    store = Store.open(settings.database_url)
    llm = build_llm(settings)
    try:
        runner = EpisodeRunner(settings, llm, store=store, learning=False)
        result = await runner.run(CycleRequest(repo_dir=repo, task=CALC_TASK, dry_run=True, max_iterations=1))
    finally:
        await llm.aclose()
        store.close()

    [record] = result.episode.iterations
    generator = [call for call in record.llm_calls if call.role == "generator"]
    assert record.edit_format == "json-line-edits" and generator and generator[-1].ok, record.error
    assert record.proposal is not None and record.proposal.changes, record.error
    assert record.apply_error is None and record.diff.startswith("diff --git a/")
    # the sandbox ran the repository's tests on the model's edit
    assert record.check_report is not None and record.check_report.checks
    assert any(check.name == "tests" for check in record.check_report.checks)
    # and the model scored it: a Rubric from the discriminator's reply, not a default
    [score] = [call for call in record.llm_calls if call.role == "discriminator" and call.ok]
    assert record.rubric is not None and score.provider == "openai" and score.completion_tokens > 0
    assert record.reward is not None and record.status in (IterationStatus.APPROVED, IterationStatus.REJECTED)
