"""Making instances, the way SWE-bench makes them: a bug-fix commit of a repository becomes an instance
with base = the commit's parent, gold patch = its source changes, test patch = its test changes
(bot/runs/realtasks.py splits them), and FAIL_TO_PASS / PASS_TO_PASS computed by running the
tests in the sandbox before the fix (base + test patch) and after it (base + fix + test patch).

The toy programs of bot/runs/suite/ become instances too: each is a one-commit repository (made
with fixed dates, so its commit id is the same on every machine) shipped as a bundle; the gold patch is
its reference fix. Their tests are part of the repository, as in the toy eval, so the test patch is empty.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bot.edits import apply_changes
from bot.runs.eval import SuiteTask, materialize
from bot.runs.realtasks import make_real_task
from bot.runs.swebench.hidden import PASSING, apply_patch, run_tests, test_modules
from bot.runs.swebench.instances import Instance
from bot.runs.swebench.repos import reset_to
from bot.workspace import run_git
from sandbox import SandboxSettings

TOY_OWNER = "aura-sicd"
FIXED_DATE = "2026-01-01T00:00:00+00:00"


class BuildError(Exception):
    """A commit that does not make an instance (no test changes, no test the fix makes pass...)."""


async def compute_tests(repo: Path, instance: Instance, sandbox: SandboxSettings, files: list[str]) -> Instance:
    """The instance with FAIL_TO_PASS / PASS_TO_PASS from two runs of `files` in the sandbox: base + test
    patch, then base + gold + test patch. `repo` is a clone whose worktree this may change."""
    await asyncio.to_thread(_tree, repo, instance, with_gold=False)
    before = await run_tests(sandbox, repo, files)
    await asyncio.to_thread(_tree, repo, instance, with_gold=True)
    after = await run_tests(sandbox, repo, files)
    await asyncio.to_thread(reset_to, repo, instance.base_commit)
    f2p = [t for t, s in after.statuses.items() if s in PASSING and before.statuses.get(t) not in PASSING]
    p2p = [t for t, s in after.statuses.items() if s in PASSING and before.statuses.get(t) in PASSING]
    if not f2p:
        raise BuildError(f"{instance.instance_id}: no test fails before the fix and passes after it "
                         f"(after: {len(after.statuses)} tests, exit {after.exit_code}; end of output:\n"
                         f"{after.output_tail[-1500:]})")
    return instance.model_copy(update={"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})


def _tree(repo: Path, instance: Instance, *, with_gold: bool) -> None:
    reset_to(repo, instance.base_commit)
    if with_gold:
        apply_patch(repo, instance.patch, "the gold patch", model=False)
    apply_patch(repo, instance.test_patch, "the test patch", model=False)


async def from_commit(repo: Path, commit: str, *, repo_name: str, sandbox: SandboxSettings) -> Instance:
    """The instance a bug-fix commit of `repo` (a clone with a worktree) makes, named owner__name-<sha7>."""
    task = await asyncio.to_thread(make_real_task, repo, commit, project=repo_name)
    if not task.test_diff:
        raise BuildError(f"{repo_name}@{commit[:12]}: the commit changes no test file, so there are no hidden tests")
    if not task.gold_diff:
        raise BuildError(f"{repo_name}@{commit[:12]}: the commit changes no source file")
    statement = f"{task.title}\n\n{task.body}".strip()
    draft = Instance(instance_id=f"{repo_name.replace('/', '__')}-{task.commit[:7]}", repo=repo_name,
                     base_commit=task.base, problem_statement=statement, patch=task.gold_diff,
                     test_patch=task.test_diff, FAIL_TO_PASS=["(computed)"],
                     created_at=run_git(["log", "-1", "--format=%cI", task.commit], repo).strip())
    return await compute_tests(repo, draft, sandbox, test_modules(task.test_files))


# --- the toy programs ----------------------------------------------------------------------------


def toy_repo(task: SuiteTask, dest: Path) -> str:
    """The toy's one-commit repository at `dest` (fixed identity and dates: the same commit id everywhere)."""
    materialize(task, dest)
    env = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
    run_git(["commit", "--quiet", "--amend", "--no-edit", "--reset-author"], dest, env=env)
    return run_git(["rev-parse", "HEAD"], dest).strip()


async def from_toy(task: SuiteTask, bundle_dir: Path, sandbox: SandboxSettings) -> Instance:
    """The toy as an instance; its repository is written to `bundle_dir` as aura-sicd__toy-<name>.bundle."""
    if task.reference_fix is None:
        raise BuildError(f"toy {task.name} has no fix.json: its gold patch comes from there")
    repo_name = f"{TOY_OWNER}/toy-{task.name}"
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        base = await asyncio.to_thread(toy_repo, task, repo)
        bundle_dir.mkdir(parents=True, exist_ok=True)
        run_git(["bundle", "create", "--quiet", str((bundle_dir / f"{TOY_OWNER}__toy-{task.name}.bundle").resolve()),
                 "main"], repo)
        await asyncio.to_thread(apply_changes, repo, task.reference_fix.changes)
        gold = run_git(["diff", "HEAD"], repo)
        reset_to(repo, base)
        tests = sorted(str(p.relative_to(repo)) for p in repo.rglob("test_*.py"))
        statement = f"{task.task.title}\n\n{task.task.body}".strip()
        draft = Instance(instance_id=f"toy-{task.name}", repo=repo_name, base_commit=base, problem_statement=statement,
                         patch=gold, test_patch="", FAIL_TO_PASS=["(computed)"])
        return await compute_tests(repo, draft, sandbox, tests)
