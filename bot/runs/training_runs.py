"""Training runs started by the admin API, each running in the background of the serving process.

`TrainingRuns.start` checks out the repository when the run is on an installed one (a worktree of its
default branch, from its mirror; the token stays in memory), runs `bot.runs.training.train` and
writes the run's end to the audit trail. A run that fails for any reason is marked failed with why.
Runs in flight are cancelled when the server stops (`aclose`): their status is then failed too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.config import Settings
from bot.events import EventBus
from bot.github.client import GitHubApp
from bot.github.mirror import RepoMirror
from bot.runs.training import TrainingError, train
from bot.llm.client import ModelClient
from bot.llm.providers import build_llm
from bot.records import Task
from bot.store import Store, StoreError
from bot.workspace import GitError, WorkspaceError

log = logging.getLogger(__name__)


class TrainingPlan(BaseModel):
    """What one run trains on: every task of `dataset` once per epoch, in `source` or the checkout of `repo`."""

    run_id: str
    repo: str  # owner/name, or the local repository's directory name
    dataset: list[Task]
    epochs: int
    dry_run: bool = True
    max_iterations: int | None = None
    source: Path | None = None  # a local git repository; None: check `repo` out from its mirror
    installation_id: int | None = None  # needed to check `repo` out


class TrainingRuns:
    """The runs in flight, one asyncio task each; their status lives in the store's runs table."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        github: Callable[[], GitHubApp | None],
        *,
        actor: str,
        observe: Callable[[EventBus], Any] | None = None,
        llm_factory: Callable[[Any], ModelClient] = build_llm,
    ) -> None:
        self.settings = settings
        self.store = store
        self.github = github
        self.actor = actor  # who the audit trail says ran it
        self.observe = observe  # e.g. the metrics, to count the run's iterations
        self.llm_factory = llm_factory
        self.mirror = RepoMirror(settings.data_dir)
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, plan: TrainingPlan) -> None:
        task = asyncio.get_running_loop().create_task(self._run(plan))
        self.tasks[plan.run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(plan.run_id, None))

    async def aclose(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def wait(self, run_id: str) -> None:
        """Until the run's task ends (tests)."""
        task = self.tasks.get(run_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, plan: TrainingPlan) -> None:
        worktree_job = f"train-{plan.run_id}"
        checked_out = plan.source is None
        llm = None
        try:
            source = plan.source or await self._checkout(plan.repo, plan.installation_id, worktree_job)
            bus = EventBus()
            if self.observe is not None:
                self.observe(bus)
            llm = self.llm_factory(self.settings)
            result = await train(
                self.settings, llm, self.store, plan.dataset, source, plan.epochs, run_id=plan.run_id,
                repo=plan.repo, dry_run=plan.dry_run, max_iterations=plan.max_iterations, bus=bus,
            )
            await asyncio.to_thread(self._audit, plan.run_id, "completed",
                                    epochs=[e.model_dump(mode="json") for e in result.epochs],
                                    patterns_recorded=result.patterns_recorded)
        except Exception as exc:  # the run is over either way: record why
            log.exception("training run %s failed", plan.run_id)
            reason = str(exc) if isinstance(exc, (TrainingError, WorkspaceError, GitError, StoreError)) else repr(exc)
            await asyncio.to_thread(self._fail, plan.run_id, reason)
        finally:
            if llm is not None:
                await llm.aclose()
            if checked_out:
                await asyncio.to_thread(self.mirror.remove_worktree, plan.repo, worktree_job)

    def _fail(self, run_id: str, reason: str) -> None:
        run = self.store.get_run(run_id)
        if run is not None and run.status == "running":
            self.store.finish_run(run_id, "failed")
        self._audit(run_id, "failed", error=reason)

    def _audit(self, run_id: str, decision: str, **details: Any) -> None:
        self.store.audit(actor=self.actor, action="training.run", subject=run_id, decision=decision, risk_score=None,
                         details={"run_id": run_id, **details}, run_id=run_id)

    async def _checkout(self, repo: str, installation_id: int | None, job: str) -> Path:
        """A worktree of the repository's default branch, from its mirror (the token stays in memory)."""
        github = self.github()
        if github is None or installation_id is None:
            raise TrainingError(f"no GitHub App installation for {repo}")
        gh = github.installation_client(installation_id)
        owner, _, name = repo.partition("/")
        data = (await gh.rest.repos.async_get(owner, name)).json()
        token = await github.installation_token(installation_id)
        branch = data.get("default_branch") or "main"
        await asyncio.to_thread(self.mirror.sync, repo, self.settings.clone_url(repo), token)
        return await asyncio.to_thread(self.mirror.add_worktree, repo, job, start=f"origin/{branch}",
                                       branch=f"aura-sicd/{job}")
