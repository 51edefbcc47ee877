"""One episode the one way: prepare from learning → cycle → finish the run → learn, through a step runner.

Real git, the real bubblewrap sandbox, Ollama faked at the HTTP level."""

from __future__ import annotations


import pytest

from bot.config import Settings
from bot.cycle.loop import CycleRequest
from bot.cycle.episode import EpisodeRunner, ServerUnavailable, required_models
from bot.events import EpisodePrepared, EventBus
from bot.pr_body import render_pr
from bot.records import EpisodeStatus
from tests.fakes.sandbox import host_sandbox
from tests.repos import CALC_TASK, GEN, GOOD_RUBRIC, RIGHT_FIX

TASK = CALC_TASK


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_iterations": 1})


class RecordingSteps:
    """A step runner that runs each step inline and keeps its name, as a durable runner would record it."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def __call__(self, name, fn, *args):  # noqa: ANN001, ANN204
        self.names.append(name)
        return await fn(*args)


def test_required_models_lists_every_model_once_in_order_of_use() -> None:
    settings = Settings(_env_file=None, generator_model="unused:1", generator_models=["a:1", "b:1", "a:1"],
                        ensemble_models=["c:1@0.7", "a:1"], discriminator_model="d:1", agitator_model="d:1")
    assert required_models(settings) == ["a:1", "b:1", "c:1", "d:1"]
    plain = Settings(_env_file=None, generator_model="g:1", discriminator_model="d:1", agitator_model="e:1")
    assert required_models(plain) == ["g:1", "d:1", "e:1"]


async def test_an_approved_episode_is_recorded_and_learned_from_by_the_next(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
    prepared: list[EpisodePrepared] = []
    bus = EventBus()
    bus.subscribe(EpisodePrepared, prepared.append)
    steps = RecordingSteps()
    runner = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox, bus=bus, step=steps,
                           run_params={"why": "test"})

    first = await runner.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK))

    assert first.status == "approved" and first.pattern_recorded
    assert steps.names[0] == "prepare" and steps.names[-2:] == ["finish-run", "learn"]
    assert "checkout" in steps.names  # the cycle's own steps go through the same runner
    run = store.get_run(first.episode.run_id)
    assert run.status == "approved" and run.kind == "cli" and run.params == {"why": "test"}
    assert prepared[0].generator_model == GEN and prepared[0].pattern_examples == 0

    second = await runner.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK))

    assert second.preparation.pattern_examples == 1  # the first episode's change, as an example
    assert prepared[1].pattern_examples == 1
    last_prompt = fake_ollama.prompt(fake_ollama.requests_for("generator")[-1])
    assert "return a + b" in last_prompt


async def test_the_task_names_the_repository_everywhere_when_the_request_does_not(repo, settings, store, fake_ollama):
    """A task of "acme/calc" checked out in a directory of another name (the CLI, the benchmarks): its run,
    episode, iterations and what the next episode learns from are all under the one name, so learning finds
    them (the iterations used to be stored under the task's name and looked up under the directory's)."""
    from bot.learning.bandit import ModelBandit

    fake_ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
    task = TASK.model_copy(update={"repo": "acme/calc"})
    runner = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox)
    assert repo.name == "calc"  # the directory: not the task's name

    first = await runner.run(CycleRequest(repo_dir=repo, task=task))
    second = await runner.run(CycleRequest(repo_dir=repo, task=task))

    assert first.status == "approved" and store.get_run(first.episode.run_id).repo == "acme/calc"
    assert {r.run_id for r in store.list_iterations(repo="acme/calc")} == {first.episode.run_id, second.episode.run_id}
    assert second.preparation.pattern_examples == 1
    [arm] = ModelBandit(store).posteriors("acme/calc", "generator", [GEN])
    assert arm.observations == 2


async def test_a_model_server_failing_mid_episode_ends_the_episode_not_the_caller(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", RIGHT_FIX)
    fake_ollama.fail_next(400, times=5)  # a refusal is never retried
    runner = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox)
    request = CycleRequest(repo_dir=repo, repo="calc", task=TASK)

    result = await runner.run(request)

    assert result.status == "error" and "400" in result.error
    assert result.episode is not None and result.episode.status is EpisodeStatus.ERROR  # as recorded
    assert store.get_run(request.run_id).status == "error"
    assert not result.pattern_recorded


async def test_an_unreachable_server_is_raised_and_the_run_ends_in_error(repo, settings, store, fake_ollama):
    fake_ollama.unreachable = True
    request = CycleRequest(repo_dir=repo, repo="calc", task=TASK)
    with pytest.raises(ServerUnavailable):
        await EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox).run(request)
    assert store.get_run(request.run_id).status == "error"


async def test_without_learning_nothing_is_prepared_or_kept(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
    learning = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox)
    assert (await learning.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK))).pattern_recorded

    measuring = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox, learning=False)
    result = await measuring.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK, dry_run=True))

    assert result.status == "approved"
    assert result.preparation.pattern_examples == 0 and result.preparation.guidance == []
    assert not result.pattern_recorded


async def test_a_dry_run_is_learned_from_only_when_asked(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", RIGHT_FIX).always("discriminator", GOOD_RUBRIC)
    request = CycleRequest(repo_dir=repo, repo="calc", task=TASK, dry_run=True)
    assert not (await EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox).run(request)).pattern_recorded

    training = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox, learn_from_dry_runs=True)
    assert (await training.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK, dry_run=True))).pattern_recorded


FIX_WITH_REPRODUCTION = {
    "summary": "add adds, with a regression test",
    "changes": [
        {"file_path": "calc.py", "change_type": "update", "new_content": None, "rationale": "add must add",
         "edits": [{"search": "    return a - b", "replace": "    return a + b"}]},
        {"file_path": "tests/test_negative.py", "change_type": "create", "edits": [], "rationale": "reproduces the bug",
         "new_content": "from calc import add\n\n\ndef test_add_negative():\n    assert add(-1, -2) == -3\n"},
    ],
}


async def test_the_baseline_shows_what_fails_on_main_and_a_new_test_is_run_on_the_base(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", FIX_WITH_REPRODUCTION).always("discriminator", GOOD_RUBRIC)
    runner = EpisodeRunner(settings, fake_ollama.llm(), store=store, sandbox_opener=host_sandbox)

    result = await runner.run(CycleRequest(repo_dir=repo, repo="calc", task=TASK))

    episode = result.episode
    assert episode.context.baseline.failing_tests == ["tests/test_calc.py::test_add"]
    first_prompt = fake_ollama.prompt(fake_ollama.requests_for("generator")[0])
    assert "These tests fail on the base commit" in first_prompt and "tests/test_calc.py::test_add" in first_prompt
    [record] = episode.iterations
    assert record.comparison.fixed == ["tests/test_calc.py::test_add"]
    assert record.comparison.reproduced == ["tests/test_negative.py::test_add_negative"]
    assert result.status == "approved"
    assert any(r.startswith("Reproduced: tests/test_negative.py::test_add_negative") for r in record.reward.reasons)
    _, body = render_pr(episode)
    assert "Reproduced (fail on main, pass with this change): `tests/test_negative.py::test_add_negative`" in body
    assert "Fixed by this change: `tests/test_calc.py::test_add`" in body
