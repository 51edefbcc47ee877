"""The cycle end to end on a real git repository, the fast tier's sandbox (the repository's real checks,
without isolation) and Ollama faked at the HTTP level."""

from __future__ import annotations

from pathlib import Path


from bot.config import Settings
from bot.cycle.loop import Cycle, CycleRequest
from bot.events import ChecksFinished, EpisodeCompleted, EventBus, IterationCompleted, IterationStarted
from bot.records import EpisodeStatus, GuidanceEntry, IterationStatus
from bot.store import Store
from tests.fakes.ollama import FakeOllama
from tests.fakes.sandbox import host_sandbox
from tests.repos import (
    CALC_TASK,
    GOOD_RUBRIC,
    RIGHT_FIX,
    WEAK_RUBRIC,
    WRONG_FIX,
    calc_update,
    git,
    make_repo,
    CALC_FILES,
)

AGITATION = {
    "guidance": "test_add expects add(2, 3) == 5: add must use the + operator, not *.",
    "focus_points": ["calc.py: add"],
    "improvement_plan": ["Change `return a * b` in add to `return a + b`"],
}
TASK = CALC_TASK


def cycle_for(settings: Settings, fake: FakeOllama, store: Store, bus: EventBus | None = None) -> Cycle:
    return Cycle(settings, fake.llm(), store=store, bus=bus, sandbox_opener=host_sandbox)


def branch_exists(repo: Path, branch: str) -> bool:
    return bool(git(repo, "branch", "--list", branch).strip())


async def test_failing_proposal_then_guided_fix_is_committed(repo, settings, store, fake_ollama):
    fake_ollama.queue("generator", WRONG_FIX, RIGHT_FIX)
    fake_ollama.queue("discriminator", WEAK_RUBRIC, GOOD_RUBRIC)
    fake_ollama.queue("agitator", AGITATION)
    head_before = git(repo, "rev-parse", "HEAD")
    events: list[str] = []
    bus = EventBus()
    for kind in (IterationStarted, ChecksFinished, IterationCompleted, EpisodeCompleted):
        bus.subscribe(kind, lambda e, k=kind.__name__: events.append(k))

    episode = await cycle_for(settings, fake_ollama, store, bus).run(CycleRequest(repo_dir=repo, task=TASK))

    assert episode.status is EpisodeStatus.APPROVED
    first, second = episode.iterations
    assert first.status is IterationStatus.REJECTED
    assert first.check_report.pass_rate == 0.5  # test_mul passes, test_add fails
    assert second.status is IterationStatus.APPROVED
    assert second.check_report.pass_rate == 1.0 and second.check_report.all_green
    # the agitator's guidance reached the second generator request
    gen_requests = fake_ollama.requests_for("generator")
    assert len(gen_requests) == 2
    assert AGITATION["guidance"] not in fake_ollama.prompt(gen_requests[0])
    assert AGITATION["guidance"] in fake_ollama.prompt(gen_requests[1])
    assert "return a * b" in fake_ollama.prompt(gen_requests[1])  # the previous attempt's diff
    assert [g.source for g in second.guidance_in] == ["baseline", "agitator"]  # what fails on main, then the coach
    # the branch holds one commit with the fix and the trailers; the caller's checkout is untouched
    branch = episode.context.branch
    assert branch == f"aura-sicd/{episode.context.proposal_id}" and len(episode.context.proposal_id) == 12
    assert "return a + b" in git(repo, "show", f"{branch}:calc.py")
    message = git(repo, "log", "-1", "--format=%B", branch)
    assert f"Aura-Run-Id: {episode.run_id}" in message
    assert f"Aura-Reward: {second.reward.value:.3f}" in message
    assert git(repo, "rev-list", "--count", f"{head_before.strip()}..{branch}").strip() == "1"
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert git(repo, "status", "--porcelain") == ""
    assert "return a - b" in (repo / "calc.py").read_text()
    assert git(repo, "worktree", "list").count("\n") == 1  # the job's worktree is gone
    # everything is on record
    stored = store.get_episode(episode.run_id, episode.episode_id)
    assert stored is not None and stored.status is EpisodeStatus.APPROVED
    assert [r.status for r in stored.iterations] == [IterationStatus.REJECTED, IterationStatus.APPROVED]
    assert stored.iterations[0].guidance_out is not None
    assert stored.metrics.llm_calls == 5 and stored.metrics.tokens_used > 0
    assert stored.metrics.changes_proposed == 2 and stored.metrics.changes_accepted == 1
    assert [g.source for g in store.list_guidance("calc")] == ["agitator"]
    assert events[0] == "IterationStarted" and events[-1] == "EpisodeCompleted"
    assert events.count("ChecksFinished") == 2


async def test_invalid_model_output_fails_the_iteration_and_says_why(repo, settings, store, fake_ollama):
    fake_ollama.queue("generator", "I think you should change calc.py", '{"summary": "x"', RIGHT_FIX)
    fake_ollama.queue("discriminator", GOOD_RUBRIC)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    first, second = episode.iterations
    assert first.status is IterationStatus.FAILED and first.proposal is None
    assert "Proposal" in first.error or "JSON" in first.error
    assert len(first.llm_calls) == 2  # the request and its one repair
    assert second.status is IterationStatus.APPROVED
    assert "unusable" in fake_ollama.prompt(fake_ollama.requests_for("generator")[-1])
    assert episode.metrics.error_count == 1


async def test_edit_that_does_not_apply_reaches_the_next_prompt(repo, settings, store, fake_ollama):
    fake_ollama.queue("generator", calc_update("    return a ~ b", "    return a + b"), RIGHT_FIX)
    fake_ollama.queue("discriminator", GOOD_RUBRIC)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    first = episode.iterations[0]
    assert first.status is IterationStatus.FAILED and first.check_report is None
    assert "calc.py" in first.apply_error and "return a ~ b" in first.apply_error
    assert first.apply_error in fake_ollama.prompt(fake_ollama.requests_for("generator")[1])
    assert episode.status is EpisodeStatus.APPROVED


async def test_workflow_edit_is_blocked_by_policy_and_audited(repo, settings, store, fake_ollama):
    sneaky = {
        "summary": "Add CI",
        "changes": [
            {"file_path": ".github/workflows/ci.yml", "change_type": "create", "edits": [],
             "new_content": "on: push\njobs: {}\n", "rationale": "CI"},
            RIGHT_FIX["changes"][0],
        ],
    }
    fake_ollama.queue("generator", sneaky, RIGHT_FIX)
    fake_ollama.queue("discriminator", GOOD_RUBRIC)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    first, second = episode.iterations
    assert first.status is IterationStatus.FAILED
    assert first.policy is not None and not first.policy.allowed
    assert any(".github/workflows/ci.yml" in v for v in first.policy.violations)
    assert first.diff == "" and first.check_report is None  # never applied
    assert ".github/workflows/ci.yml" in fake_ollama.prompt(fake_ollama.requests_for("generator")[1])
    audit = store.list_audit(run_id=episode.run_id)
    assert [a.decision for a in reversed(audit) if a.action == "proposal.evaluate"] == ["denied", "allowed"]  # newest first
    assert second.status is IterationStatus.APPROVED
    branch = episode.context.branch
    assert ".github/workflows/ci.yml" not in git(repo, "ls-tree", "-r", "--name-only", branch)


async def test_exhaustion_after_max_iterations_leaves_no_branch(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", WRONG_FIX)
    fake_ollama.always("discriminator", WEAK_RUBRIC)
    fake_ollama.always("agitator", AGITATION)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK, max_iterations=2))

    assert episode.status is EpisodeStatus.EXHAUSTED
    assert [r.status for r in episode.iterations] == [IterationStatus.REJECTED, IterationStatus.REJECTED]
    assert len(fake_ollama.requests_for("agitator")) == 1  # guidance only between attempts
    assert episode.outcomes.best_reward == episode.iterations[0].reward.value
    assert "return a * b" in episode.outcomes.best_diff
    assert not branch_exists(repo, episode.context.branch)
    assert episode.outcomes.commit is None


async def test_exhaustion_can_keep_the_best_attempt_for_a_draft(repo, settings, store, fake_ollama):
    fake_ollama.always("generator", WRONG_FIX)
    fake_ollama.always("discriminator", WEAK_RUBRIC)
    fake_ollama.always("agitator", AGITATION)
    request = CycleRequest(repo_dir=repo, task=TASK, max_iterations=1, commit_best_on_exhaustion=True)

    episode = await cycle_for(settings, fake_ollama, store).run(request)

    assert episode.status is EpisodeStatus.EXHAUSTED and episode.outcomes.draft is True
    branch = episode.context.branch
    assert "return a * b" in git(repo, "show", f"{branch}:calc.py")
    assert git(repo, "log", "-1", "--format=%s", branch).startswith("[draft]")


async def test_no_change_needed_ends_the_episode_when_nothing_the_task_is_about_fails(tmp_path, settings, store,
                                                                                      fake_ollama):
    repo = make_repo(tmp_path / "fixed", {**CALC_FILES, "calc.py": CALC_FILES["calc.py"].replace("a - b", "a + b")})
    fake_ollama.queue("generator", {"summary": "calc already does this", "changes": []})

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    assert episode.status is EpisodeStatus.NO_CHANGE
    assert "2 tests ran and none that relates to the task fails" in episode.outcomes.evidence
    assert len(episode.iterations) == 1 and not fake_ollama.requests_for("discriminator")
    assert not branch_exists(repo, episode.context.branch)


async def test_no_change_needed_is_a_failed_attempt_while_the_tasks_test_fails_on_the_base(repo, settings, store,
                                                                                        fake_ollama):
    settings.max_iterations = 2
    fake_ollama.queue("generator", {"summary": "calc already does this", "changes": []}, RIGHT_FIX)
    fake_ollama.always("discriminator", GOOD_RUBRIC)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    first, second = episode.iterations
    assert first.status is IterationStatus.FAILED
    assert "tests this task is about fail on the base: tests/test_calc.py::test_add" in first.error
    assert "You proposed no change" in second.guidance_in[-1].text and "test_add" in second.guidance_in[-1].text
    assert episode.status is EpisodeStatus.APPROVED


async def test_ensemble_keeps_the_best_candidate(repo, settings, store, fake_ollama):
    settings.ensemble_size = 2
    fake_ollama.queue("generator", WRONG_FIX, RIGHT_FIX)
    fake_ollama.queue("discriminator", WEAK_RUBRIC, GOOD_RUBRIC)

    episode = await cycle_for(settings, fake_ollama, store).run(CycleRequest(repo_dir=repo, task=TASK))

    assert episode.status is EpisodeStatus.APPROVED
    assert [(r.number, r.candidate, r.status) for r in episode.iterations] == [
        (1, 0, IterationStatus.REJECTED), (1, 1, IterationStatus.APPROVED)
    ]
    temps = [r["options"]["temperature"] for r in fake_ollama.requests_for("generator")]
    assert temps[0] < temps[1]
    assert episode.outcomes.best_candidate == 1
    assert "return a + b" in git(repo, "show", f"{episode.context.branch}:calc.py")


async def test_human_guidance_is_in_the_first_prompt(repo, settings, store, fake_ollama):
    fake_ollama.queue("generator", RIGHT_FIX)
    fake_ollama.queue("discriminator", GOOD_RUBRIC)
    request = CycleRequest(
        repo_dir=repo, task=TASK, dry_run=True,
        guidance=[GuidanceEntry(source="human", text="Keep the docstring of add unchanged.")],
    )

    episode = await cycle_for(settings, fake_ollama, store).run(request)

    assert "Keep the docstring of add unchanged." in fake_ollama.prompt(fake_ollama.requests_for("generator")[0])
    assert episode.status is EpisodeStatus.APPROVED
    assert episode.outcomes.commit is None and not branch_exists(repo, episode.context.branch)  # dry run


class RecordingSteps:
    """A stand-in for a durable step runner: the first run records each step's output by name; a replay
    returns the recorded outputs without running the steps, as DBOS does for a resumed workflow."""

    def __init__(self) -> None:
        self.outputs: dict[str, object] = {}
        self.replaying = False

    async def __call__(self, name, fn, *args):
        if self.replaying:
            return self.outputs[name]
        self.outputs[name] = result = await fn(*args)
        return result


async def test_a_replayed_episode_repeats_no_side_effect(repo, settings, store, fake_ollama):
    fake_ollama.queue("generator", WRONG_FIX, RIGHT_FIX)
    fake_ollama.queue("discriminator", WEAK_RUBRIC, GOOD_RUBRIC)
    fake_ollama.queue("agitator", AGITATION)
    steps = RecordingSteps()
    request = CycleRequest(repo_dir=repo, task=TASK)
    cycle = Cycle(settings, fake_ollama.llm(), store=store, step=steps, sandbox_opener=host_sandbox)

    first = await cycle.run(request)
    chat_requests = len(fake_ollama.requests)
    guidance_rows = len(store.list_guidance("calc"))
    audit_rows = len(store.list_audit(run_id=request.run_id))
    steps.replaying = True
    replayed = await cycle.run(request)

    assert len(fake_ollama.requests) == chat_requests  # no model was asked again
    assert len(store.list_guidance("calc")) == guidance_rows == 1
    assert len(store.list_audit(run_id=request.run_id)) == audit_rows == 2
    assert replayed.status is first.status is EpisodeStatus.APPROVED
    assert replayed.outcomes.commit == first.outcomes.commit
    assert [r.status for r in store.get_episode(request.run_id, request.episode_id).iterations] == [
        IterationStatus.REJECTED, IterationStatus.APPROVED
    ]
