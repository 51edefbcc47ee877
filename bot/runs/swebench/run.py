"""Running instances: per instance and model, the full cycle on the base commit with the problem statement
as the task (bot/cycle/episode.py, as a dry run, without learning), then the hidden tests on the result.

The result is the approved diff, or the best attempt's when none was approved (what the bot would
submit); no diff at all is an empty patch, or malformed edits when the model's edits never applied.
With the oracle (the gold patch as the answer), an instance that does not resolve is an environment
failure: the fix is known to be right, so the environment is what failed. The oracle answers in one
attempt; further attempts would repeat it.

Instances run `jobs` at a time; a result is saved as each finishes, and a run in the same OUT skips the
finished ones. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bot.config import Settings
from bot.runs.realtasks import RELEASE_FILES, ChangedLine, changed_base_lines, is_doc_path, shown_lines
from bot.runs.swebench import hidden
from bot.runs.swebench.instances import Instance, patch_files
from bot.runs.swebench.oracle import ORACLE, OracleError, OracleLLM, gold_proposal
from bot.runs.swebench.report import (
    InstanceResult,
    Report,
    load_result,
    model_dir_name,
    save_result,
    summarize,
    write_outputs,
)
from bot.runs.swebench.repos import Repos
from bot.records import Episode, EpisodeStatus
from bot.workspace import run_git
from sandbox import SandboxError


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class SwebenchRun:
    settings: Settings
    repos: Repos
    out: Path
    llm: Any = None  # the LLM layer for real models (bot.llm.providers.build_llm); the oracle needs none
    max_iterations: int | None = None
    jobs: int = 1
    progress: Callable[[str], None] = _stderr
    instances_file: str = ""
    _done: int = field(default=0, init=False)

    async def run(self, instances: list[Instance], models: list[str]) -> Report:
        """Every instance for every model (ORACLE for the oracle), then the report in OUT."""
        from bot.cycle.episode import check_models

        if self.jobs < 1:
            raise ValueError("--jobs must be at least 1")
        for instance in instances:  # a missing repository or commit stops the run before any work
            await asyncio.to_thread(self.repos.mirror, instance)
        for model in models:
            if model != ORACLE:
                await check_models(self.llm, self._settings_for(model))
        pairs = [(i, m) for m in models for i in instances]
        pending = [(i, m) for i, m in pairs if load_result(self.out, m, i.instance_id) is None]
        if len(pending) < len(pairs):
            self.progress(f"resuming: {len(pairs) - len(pending)} of {len(pairs)} already done in {self.out}")
        gate = asyncio.Semaphore(self.jobs)
        total = len(pending)

        async def one(instance: Instance, model: str) -> None:
            async with gate:
                self.progress(f"start {instance.instance_id} ({model})")
                result = await self.run_instance(instance, model)
                save_result(self.out, result)
                self._done += 1
                self.progress(f"[{self._done}/{total}] {instance.instance_id} ({model}): {result.status} "
                              f"in {result.wall_s:.1f} s")
                self.write_report(instances, models)

        async with asyncio.TaskGroup() as group:
            for instance, model in pending:
                group.create_task(one(instance, model))
        return self.write_report(instances, models)

    def write_report(self, instances: list[Instance], models: list[str]) -> Report:
        results = [r for m in models for i in instances if (r := load_result(self.out, m, i.instance_id)) is not None]
        report = Report(instances_file=self.instances_file, models=models, results=results, per_model=summarize(results))
        write_outputs(self.out, report)
        return report

    def _settings_for(self, model: str) -> Settings:
        update: dict[str, Any] = {"generator_model": model, "generator_models": [], "ensemble_models": [],
                                  "ensemble_size": 1, "data_dir": self.out / "work" / "data"}
        if model == ORACLE:
            update.update(discriminator_model=ORACLE, agitator_model=ORACLE)
        return self.settings.model_copy(update=update)

    async def run_instance(self, instance: Instance, model: str) -> InstanceResult:
        from bot.cycle.loop import CycleRequest
        from bot.cycle.episode import EpisodeRunner, ServerUnavailable

        started = time.perf_counter()
        result = InstanceResult(instance_id=instance.instance_id, repo=instance.repo, model=model, status="error",
                                resolved=False)
        work = self.out / "work" / model_dir_name(model) / instance.instance_id
        try:
            repo = await self.repos.clone(instance, work / "repo")
            llm = self.llm
            if model == ORACLE:
                llm = OracleLLM(await asyncio.to_thread(gold_proposal, repo, instance.base_commit, instance.patch))
            runner = EpisodeRunner(self._settings_for(model), llm, learning=False)
            iterations = self.max_iterations or (1 if model == ORACLE else None)
            request = CycleRequest(repo_dir=repo, repo=instance.repo, task=instance.task(), base_ref=instance.base_commit,
                                   max_iterations=iterations, dry_run=True, kind="eval")
            outcome = await runner.run(request)
            episode = outcome.episode
            result.tokens = sum(c.prompt_tokens + c.completion_tokens for c in outcome.error_calls)
            if episode is not None:
                self._save_episode(model, instance, episode)
                self._read_episode(result, episode, repo, instance)
            if outcome.error is not None:
                result.error = outcome.error
            elif not result.model_patch.strip():
                result.status = "malformed edits" if _malformed(episode) else "empty patch"
            else:
                tests = await hidden.evaluate(self.settings.sandbox, repo, instance, result.model_patch)
                result.fail_to_pass_failed, result.pass_to_pass_failed = tests.fail_to_pass_failed, tests.pass_to_pass_failed
                result.resolved = tests.resolved
                if tests.error:
                    result.error = tests.error
                else:
                    result.status = "resolved" if tests.resolved else "unresolved"
        except ServerUnavailable:
            raise
        except SandboxError as exc:
            result.status, result.error = "environment failure", f"sandbox: {exc}"
        except OracleError as exc:
            result.error = f"the gold patch: {exc}"
        except Exception as exc:  # noqa: BLE001  (one broken instance must not end the run: it is reported with its error)
            result.error = f"{type(exc).__name__}: {exc}"
        if model == ORACLE and result.status not in ("resolved", "error"):
            result.error = result.error or f"the gold patch did not resolve the instance ({result.status})"
            result.status = "environment failure"
        result.wall_s = round(time.perf_counter() - started, 1)
        shutil.rmtree(work, ignore_errors=True)
        return result

    def _read_episode(self, result: InstanceResult, episode: Episode, repo: Path, instance: Instance) -> None:
        result.episode_status = episode.status.value
        result.approved = episode.status is EpisodeStatus.APPROVED
        result.iterations = max((r.number for r in episode.iterations), default=0)
        result.tokens += episode.metrics.tokens_used
        result.model_patch = episode.outcomes.best_diff
        first = next((r for r in episode.iterations if r.generator_messages), None)
        if instance.patch and first is not None:
            prompt = "\n\n".join(m.get("content", "") for m in first.generator_messages)
            changed = gold_changed_lines(repo, instance)
            shown = shown_lines(prompt)
            missing = [c for c in changed if c.text not in shown.get(c.path, set())]
            result.changed_lines_in_prompt = not missing
            result.missing_lines = [f"{c.path}:{c.line}" for c in missing]

    def _save_episode(self, model: str, instance: Instance, episode: Episode) -> None:
        path = self.out / "episodes" / model_dir_name(model) / f"{instance.instance_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(episode.model_dump_json(indent=1), encoding="utf-8")


def _malformed(episode: Episode | None) -> bool:
    """The model answered with edits that never applied, or with output the edit format could not read."""
    if episode is None:
        return False
    return any(r.apply_error or (r.proposal is None and r.error) for r in episode.iterations)


def gold_changed_lines(repo: Path, instance: Instance) -> list[ChangedLine]:
    """The base lines the gold patch changes (realtasks.changed_base_lines), via a commit of base + gold
    made in a scratch index: neither the worktree nor any branch is touched."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        run_git(["read-tree", instance.base_commit], repo, env=env)
        run_git(["apply", "--cached", "--whitespace=nowarn", "-"], repo, env=env, input=instance.patch)
        tree = run_git(["write-tree"], repo, env=env).strip()
    commit = run_git(["commit-tree", tree, "-p", instance.base_commit, "-m", "gold"], repo).strip()
    return [line for path in patch_files(instance.patch)
            if not is_doc_path(path) and PurePosixPath(path).name not in RELEASE_FILES
            for line in changed_base_lines(repo, instance.base_commit, commit, path)]
