"""What the tests of bot/ share: clones of the real projects of tests/data/realrepos/ and the real bug-fix
commits of tests/data/realtasks.json made into tasks (bot/runs/realtasks.py), and one real failed attempt."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from bot.context import RepoIndex
from bot.records import IterationRecord, IterationStatus
from bot.runs.realtasks import RealTask, checkout, clone_bundle, load_specs, make_real_task
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest

DATA = Path(__file__).resolve().parent.parent / "data"
REAL_TASKS = {spec.commit[:7]: spec for spec in load_specs(DATA / "realtasks.json")}


class RealRepos:
    """Clones of the bundles, one per project, made once per test session; each call checks one out."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def at(self, bundle: str, branch: str, commit: str) -> Path:
        """The project's clone with its worktree at `commit` (whatever an earlier test left is dropped)."""
        repo = clone_bundle(DATA / "realrepos" / f"{bundle}.bundle", branch, self.root / bundle)
        checkout(repo, commit)
        return repo

    def task(self, commit: str) -> tuple[RealTask, Path]:
        """The task of a listed commit (its first seven hex digits) and its project at the task's base."""
        spec = REAL_TASKS[commit]
        repo = clone_bundle(DATA / "realrepos" / f"{spec.bundle}.bundle", spec.branch, self.root / spec.bundle)
        task = make_real_task(repo, spec.commit, project=spec.bundle)
        checkout(repo, task.base)
        return task, repo


@pytest.fixture(scope="session")
def real_repos(tmp_path_factory: pytest.TempPathFactory) -> RealRepos:
    return RealRepos(tmp_path_factory.mktemp("realrepos"))


class NestFailure(NamedTuple):
    task: RealTask
    repo: Path  # at the task's base
    index: RepoIndex
    attempt: IterationRecord  # attempt 1, rejected: the hidden test's failure with its traceback


@pytest.fixture
def nest_failure(real_repos: RealRepos) -> NestFailure:
    """tomli 55e97ee, whose title names no code; its attempt 1 fails the hidden test with the KeyError raised
    in NestedDict.get_or_create_nest, as pytest reports it."""
    task, repo = real_repos.task("55e97ee")
    index = RepoIndex.build(repo)
    lines = index.lines("tomli/_parser.py")
    raised = lines.index('            raise KeyError("There is no nest behind this key")') + 1
    called = next(n for n, line in enumerate(lines, start=1) if "state.out.get_or_create_nest(key)" in line)
    traceback = (
        "Traceback (most recent call last):\n"
        f'  File "/workspace/tomli/_parser.py", line {called}, in create_dict_rule\n'
        f'  File "/workspace/tomli/_parser.py", line {raised}, in get_or_create_nest\n'
        "KeyError: 'There is no nest behind this key'\n"
    )
    report = CheckReport(backend="test", checks=[CheckResult(
        name="tests", command=["pytest"], status=CheckStatus.FAILED,
        failing_tests=[FailingTest(test_id="tests/test_extras.py::test_invalid[overwrite-with-deep-table]",
                                   message="KeyError", traceback=traceback)],
    )])
    attempt = IterationRecord(run_id="r", episode_id="e", number=1, proposal_id="p", status=IterationStatus.REJECTED,
                              check_report=report)
    return NestFailure(task, repo, index, attempt)
