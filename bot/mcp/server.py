"""The feedback loop as an MCP server (the official `mcp` SDK's FastMCP), for IDEs and other agents.

Tools: `improve` (one episode on a repository), `code_feedback` (one file's code, no repository),
`check` (a repository's checks in the sandbox), `episodes` and `run_summary` (the record),
`bench_report`. Episodes run through `EpisodeRunner`, exactly as `aura-sicd improve` runs them, and
report each iteration as an MCP progress notification.

Safety is the command line's: checks run in the sandbox, proposals pass the policy, and with
`SAFE_MODE` on every episode is a dry run (no branch, no commit is kept). Repository paths must lie
inside the roots given at start (`aura-sicd mcp --root DIR`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from bot.config import Settings
from bot.cycle.loop import CycleRequest
from bot.cycle.episode import EpisodeResult, EpisodeRunner, check_models
from bot.events import ChecksFinished, EventBus, IterationCompleted, IterationStarted
from bot.learning.bench import BenchReport
from bot.llm.client import LLMError, ModelClient
from bot.llm.providers import build_llm
from bot.mcp import feedback
from bot.mcp.results import ImproveResult, PathOutsideRoots, Roots, improve_result
from bot.records import GuidanceEntry, Task
from bot.store import EpisodeSummary, RunInfo, RunSummary, Store
from bot.workspace import WorkspaceError, ensure_repository
from sandbox import CheckReport, SandboxError, open_sandbox

INSTRUCTIONS = """\
Aura SICD runs a generate → test → score → guide loop with local models: a generator proposes a change,
the repository's checks run in a sandbox, a discriminator scores it, an agitator says what to do better.
Use `improve` to work a task on a repository, `code_feedback` for one file's code, `check` to run a
repository's checks, `episodes`/`run_summary`/`bench_report` to read what was recorded."""

Iterations = Annotated[int, Field(ge=1, le=50, description="attempts at most (default: the server's setting)")]


class EpisodesResult(BaseModel):
    runs: list[RunInfo] = Field(default_factory=list)  # without run_id: the newest runs
    episodes: list[EpisodeSummary] = Field(default_factory=list)  # with run_id: that run's episodes


class Progress:
    """An episode's events as MCP progress notifications, counted in iterations (always increasing)."""

    def __init__(self, ctx: Context, max_iterations: int) -> None:
        self.ctx = ctx
        self.total = float(max_iterations)
        self.done = 0.0

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(IterationStarted, self.started)
        bus.subscribe(ChecksFinished, self.checked)
        bus.subscribe(IterationCompleted, self.completed)

    async def _report(self, value: float, message: str) -> None:
        self.done = max(value, self.done + 0.01)
        await self.ctx.report_progress(round(self.done, 2), self.total, message)

    async def started(self, e: IterationStarted) -> None:
        model = f" {e.model}" if e.model else ""
        await self._report(e.number - 1 + 0.1, f"iteration {e.number}/{e.max_iterations}:{model} is proposing a change")

    async def checked(self, e: ChecksFinished) -> None:
        await self._report(e.number - 1 + 0.6, f"iteration {e.number}: checks done, scoring")

    async def completed(self, e: IterationCompleted) -> None:
        r = e.record
        reward = f", reward {r.reward.value:.3f}" if r.reward else ""
        await self._report(float(r.number), f"iteration {r.number}: {r.status.value}{reward}")


class AuraMCP:
    """The tools and what they share: settings, roots, one store, the model client factory."""

    def __init__(self, settings: Settings, roots: Roots, *,
                 llm_factory: Callable[[Settings], ModelClient] = build_llm) -> None:
        self.settings = settings
        self.roots = roots
        self.llm_factory = llm_factory
        self._store: Store | None = None
        self._store_lock = threading.Lock()

    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                self._store = Store.open(self.settings.database_url)
            return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def repository(self, path: str) -> Path:
        try:
            return ensure_repository(self.roots.resolve(path))
        except (PathOutsideRoots, WorkspaceError) as exc:
            raise ToolError(str(exc)) from exc

    async def run_episode(self, request: CycleRequest, settings: Settings, ctx: Context, *,
                          learning: bool = True) -> EpisodeResult:
        llm = self.llm_factory(settings)
        try:
            try:
                await check_models(llm, settings)
            except LLMError as exc:
                raise ToolError(str(exc)) from exc
            bus = EventBus()
            Progress(ctx, request.max_iterations or settings.max_iterations).subscribe(bus)
            store = await asyncio.to_thread(self.store)
            runner = EpisodeRunner(settings, llm, store=store, bus=bus, learning=learning,
                                   run_params={"path": str(request.repo_dir), "dry_run": request.dry_run, "via": "mcp"})
            try:
                return await self._cancellable(runner.run(request), store, request.run_id)
            except (WorkspaceError, SandboxError) as exc:
                raise ToolError(str(exc)) from exc
            except LLMError as exc:
                raise ToolError(f"the model server failed mid-run: {exc}") from exc
        finally:
            await llm.aclose()

    @staticmethod
    async def _cancellable(episode: Coroutine[Any, Any, EpisodeResult], store: Store, run_id: str) -> EpisodeResult:
        """Run the episode in its own task: when the client cancels the request, the episode is cancelled
        once and may clean up (worktree, branch) before the run is marked cancelled."""
        task = asyncio.ensure_future(episode)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(task, return_exceptions=True)
                if task.cancelled():
                    await asyncio.to_thread(store.finish_run, run_id, "cancelled")
            raise

    # --- the tools -----------------------------------------------------------------------------

    async def improve(self, repo_path: str, task: str, ctx: Context, guidance: list[str] | None = None,
                      max_iterations: Iterations | None = None, dry_run: bool = False,
                      base: str = "HEAD") -> ImproveResult:
        repo = self.repository(repo_path)
        text = task.strip()
        if not text:
            raise ToolError("the task is empty")
        title, _, body = text.partition("\n")
        notes = []
        if self.settings.safe_mode and not dry_run:
            dry_run = True
            notes.append("SAFE_MODE is on: ran as a dry run, no branch or commit was kept (set SAFE_MODE=0 to keep them)")
        request = CycleRequest(
            repo_dir=repo, repo=repo.name, base_ref=base, dry_run=dry_run, max_iterations=max_iterations, kind="mcp",
            task=Task(title=title.strip().lstrip("# ").strip(), body=body.strip(), source="mcp", repo=repo.name),
            guidance=[GuidanceEntry(source="human", text=g) for g in guidance or [] if g.strip()],
        )
        result = await self.run_episode(request, self.settings, ctx)
        return improve_result(request.run_id, result.episode, dry_run=dry_run, error=result.error, notes=notes)

    async def code_feedback(self, file_path: str, code: str, ctx: Context, iterations: Iterations = 3,
                            tests: str | None = None, test_path: str | None = None,
                            instructions: str | None = None) -> feedback.FeedbackResult:
        try:
            rel = feedback.relative_file_path(file_path)
            files = {rel: code}
            if tests:
                tests_at = feedback.relative_file_path(test_path or feedback.default_test_path(rel))
                if tests_at == rel:
                    raise feedback.FeedbackInputError(f"the tests and the code cannot both be {rel}: give another test_path")
                files[tests_at] = tests
        except feedback.FeedbackInputError as exc:
            raise ToolError(str(exc)) from exc
        if not code.strip():
            raise ToolError("code is empty")
        if sum(len(t) for t in files.values()) > feedback.MAX_CODE_CHARS:
            raise ToolError(f"code and tests together may hold at most {feedback.MAX_CODE_CHARS} characters")
        repo = await asyncio.to_thread(feedback.make_throwaway_repo, self.settings.data_dir / "feedback", files)
        try:
            task = feedback.feedback_task(rel, files, instructions)
            request = CycleRequest(repo_dir=repo, repo=task.repo, task=task, dry_run=True, max_iterations=iterations,
                                   kind="mcp")
            # learning stays off: memory of one snippet says nothing about the next
            result = await self.run_episode(request, self.settings, ctx, learning=False)
            improved = None
            if result.episode is not None:
                improved = await asyncio.to_thread(feedback.improved_code, repo, result.episode, rel)
            return feedback.feedback_result(request.run_id, rel, result.episode, improved, result.error)
        finally:
            with anyio.CancelScope(shield=True):  # also when the client cancelled the request
                await feedback.remove_repo(repo)

    async def check(self, repo_path: str) -> CheckReport:
        try:
            path = self.roots.resolve(repo_path)
        except PathOutsideRoots as exc:
            raise ToolError(str(exc)) from exc
        if not path.is_dir():
            raise ToolError(f"{repo_path} is not a directory")
        try:
            async with open_sandbox(self.settings.sandbox, path) as box:
                return await box.check(path)
        except SandboxError as exc:
            raise ToolError(str(exc)) from exc

    async def episodes(self, run_id: str | None = None, repo: str | None = None,
                       limit: Annotated[int, Field(ge=1, le=500)] = 20) -> EpisodesResult:
        def read() -> EpisodesResult:
            store = self.store()
            if run_id is None:
                return EpisodesResult(runs=store.list_runs(repo=repo, limit=limit))
            if store.get_run(run_id) is None:
                raise ToolError(f"unknown run {run_id!r}: call episodes without run_id to list the runs")
            return EpisodesResult(episodes=store.list_episode_summaries(run_id)[:limit])

        return await asyncio.to_thread(read)

    async def run_summary(self, run_id: str) -> RunSummary:
        def read() -> RunSummary:
            store = self.store()
            if store.get_run(run_id) is None:
                raise ToolError(f"unknown run {run_id!r}: call episodes to list the runs")
            return store.run_summary(run_id)

        return await asyncio.to_thread(read)

    async def bench_report(self, repo: str | None = None, file: str | None = None,
                           limit: Annotated[int, Field(ge=1)] | None = None) -> BenchReport:
        from bot.learning.bench import bench_report

        return await asyncio.to_thread(lambda: bench_report(self.store(), repo=repo, file=file, limit=limit))


TOOLS: dict[str, str] = {
    "improve": "Work a task on a local git repository with the generate → test → score → guide loop. Returns the "
               "verdict, the branch with the approved commit (none on a dry run), the PR title and body, the reward "
               "trace and the run id. Reports each iteration as progress.",
    "code_feedback": "Code commentary, feedback, reward analysis and guidance for one file's code, no repository "
                     "needed: generator → discriminator → agitator iterations, each with its reward, rubric and "
                     "guidance, and the best version of the file. Give tests (pytest code) to have them run too.",
    "check": "Run a repository's checks (syntax, lint, types, tests) in the sandbox and return the report.",
    "episodes": "The newest recorded runs, or with run_id that run's episodes (status, iterations, best reward).",
    "run_summary": "One run's totals: episodes by status, tokens, changes proposed and accepted.",
    "bench_report": "Progress measured over the recorded attempts: per-metric means, reward first → last, "
                    "the most common issues the discriminator raised.",
}


def build_server(settings: Settings, roots: Roots, *, host: str = "127.0.0.1", port: int = 8000,
                 llm_factory: Callable[[Settings], ModelClient] = build_llm) -> tuple[FastMCP, AuraMCP]:
    aura = AuraMCP(settings, roots, llm_factory=llm_factory)
    server: FastMCP[Any] = FastMCP("aura-sicd", instructions=INSTRUCTIONS, host=host, port=port, log_level="WARNING")
    for name, description in TOOLS.items():
        server.add_tool(getattr(aura, name), name=name, description=description)
    return server, aura
