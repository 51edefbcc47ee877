"""A store filled the way the cycle fills it: runs on two repositories over a week, rewards improving,
with proposals, checks, rubrics and guidance, for the dashboard tests and the browser test."""

from __future__ import annotations

from datetime import timedelta

from bot.records import (
    AgitatorGuidance,
    Change,
    ChangeType,
    Edit,
    EpisodeStatus,
    GuidanceEntry,
    IterationStatus,
    LLMCall,
    Proposal,
    Rubric,
    Task,
)
from bot.store import Store
from sandbox.reports import CheckReport, CheckResult, CheckStatus, TestCounts
from tests.builders import T0, iteration, save_episode

LESSON = "add must use +: test_add expects add(2, 3) == 5."
ISSUE = "The change does not handle negative numbers."


def checks(passed: bool, seconds: float = 1.4) -> CheckReport:
    status = CheckStatus.PASSED if passed else CheckStatus.FAILED
    return CheckReport(backend="bwrap", pass_rate=1.0 if passed else 0.5, checks=[
        CheckResult(name="pytest", command=["pytest", "-q"], status=status, duration_s=seconds,
                    tests=TestCounts(passed=4 if passed else 2, failed=0 if passed else 2)),
        CheckResult(name="ruff", command=["ruff", "check", "."], status=CheckStatus.PASSED, duration_s=0.3),
    ])


def attempt(run_id: str, episode_id: str, number: int, reward: float, at, *, model: str, repo_file: str):
    good = reward >= 0.75
    record = iteration(
        run_id, episode_id, number, reward=reward, model=model, at=at,
        prop=Proposal(summary=f"Make add() add ({'second' if number > 1 else 'first'} try)", changes=[Change(
            file_path=repo_file, change_type=ChangeType.UPDATE, rationale="add() subtracted; the tests expect a sum.",
            edits=[Edit(search="    return a - b", replace="    return a + b" if good else "    return b - a")])]),
        rubric=Rubric(coverage=reward, accuracy=reward, coherence=0.9, formatting=0.9, issues=[] if good else [ISSUE]),
        extra_calls=[LLMCall(role="discriminator", model="qwen2.5:7b", prompt_tokens=300, completion_tokens=40, duration_ms=2100)],
    )
    return record.model_copy(update={
        "check_report": checks(good),
        "guidance_in": [GuidanceEntry(source="human", text="Keep calc.py free of imports.", author="maria", path=repo_file)],
        "guidance_out": None if good else AgitatorGuidance(guidance=LESSON, focus_points=[f"{repo_file}: add"],
                                                            improvement_plan=["Use +", "Run test_add"]),
        "status": IterationStatus.APPROVED if good else IterationStatus.REJECTED,
    })


def fill(store: Store) -> dict[str, str]:
    """Six runs over six days on two repositories; returns ids worth opening."""
    ids = {}
    for day in range(6):
        for repo, model, offset in (("acme/calc", "qwen2.5-coder:7b", 0.0), ("acme/web", "deepseek-coder:6.7b", -0.15)):
            at = T0 + timedelta(days=day, hours=2 if repo == "acme/web" else 0)
            run_id = f"{repo.split('/')[1]}-run-{day + 1}"
            episode_id = f"{run_id}-ep1"
            first = max(0.05, min(0.95, 0.3 + 0.08 * day + offset))
            second = max(0.05, min(0.97, first + 0.35))
            records = [attempt(run_id, episode_id, 1, first, at, model=model, repo_file="calc.py")]
            if first < 0.75:
                records.append(attempt(run_id, episode_id, 2, second, at + timedelta(minutes=3), model=model, repo_file="calc.py"))
            approved = records[-1].status is IterationStatus.APPROVED
            save_episode(store, run_id, episode_id, Task(title="add() returns the wrong result", body="add(2, 3) should be 5.",
                                                         repo=repo, files=["calc.py"]),
                         records, status=EpisodeStatus.APPROVED if approved else EpisodeStatus.EXHAUSTED,
                         kind="training" if day % 2 else "github", at=at)
            store.finish_run(run_id, "completed")
            ids.setdefault(repo, run_id)
            ids["last_run"], ids["last_episode"] = run_id, episode_id
    return ids
