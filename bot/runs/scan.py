"""Autonomous mode: find work on the base and do it (`aura-sicd scan`, the GitHub App's scheduled scans).

    checks on the unmodified base (the sandbox; kept as the baseline the episodes reuse)
    → findings: the failing tests of each cause (bot/runs/causes.py), each file's lint or type findings, each
      red check saying nothing finer
    → one episode per finding through `EpisodeRunner` (a run of kind "scan" holding them all)
    → one branch per approved fix; the session report

What a finding is and how it becomes a task lives in bot/runs/scan_report.py with the report.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.cycle.baseline import FINDING_LINE, GREEN, Baseline, save_baseline
from bot.config import Settings
from bot.cycle.loop import CycleRequest, SandboxOpener
from bot.cycle.episode import EpisodeRunner, ServerUnavailable
from bot.events import EventBus
from bot.llm.client import LLMError, ModelClient
from bot.records import utcnow
from bot.runs.causes import failing_frame, group_by_cause, function_of
from bot.runs.scan_report import CheckLine, Finding, ScanReport, TaskOutcome
from bot.workspace import GitError, WorkspaceError, ensure_repository, remove_worktree, resolve_commit, run_git
from sandbox import CheckReport, CheckResult, SandboxError, open_sandbox
from sandbox.reports import FailingTest

_NOTE = re.compile(r":\s*note:")  # mypy's notes explain an error; they are not findings of their own
# the sandbox's environment, not the code: a module or its stubs are not installed where the tool runs
_ENVIRONMENT = re.compile(r"\[(import-not-found|import-untyped|import)\]\s*$")
KIND_ORDER = {"test": 0, "finding": 1, "check": 2}
OUTPUT_TAIL = 2500

OnFinding = Callable[[int, int, Finding], None]  # (number, of, finding) as each task starts


def findings_of(report: CheckReport) -> list[Finding]:
    """The work a base's report shows: failing tests first, then per-file findings, then red checks."""
    found: list[Finding] = []
    for check in report.checks:
        if check.status in GREEN:
            continue
        found.extend(_check_findings(check))
    unique: dict[str, Finding] = {}
    for finding in found:
        unique.setdefault(finding.key, finding)
    return sorted(unique.values(), key=lambda f: KIND_ORDER[f.kind])


def _check_findings(check: CheckResult) -> list[Finding]:
    out = []
    for group in group_by_cause(check.failing_tests):
        out.append(_test_finding(check, group))
    listed_all = check.tests is None or len(check.failing_tests) >= check.tests.failed + check.tests.errors
    if check.failing_tests and listed_all:
        return out
    per_file: dict[str, list[str]] = {}
    environment = 0
    if check.tests is None:
        for line in check.output.splitlines():
            match = FINDING_LINE.match(line.strip())
            if not match or _NOTE.search(line):
                continue
            if _ENVIRONMENT.search(line):
                environment += 1
                continue
            per_file.setdefault(match.group("path").removeprefix("./"), []).append(line.strip())
    for path, lines in per_file.items():
        what = "type errors" if check.name in ("types", "mypy", "tsc") else f"{check.name} findings"
        out.append(Finding(key=f"{check.name}:{path}", kind="finding", check=check.name, path=path,
                           title=f"Fix the {what} in {path}", details=lines))
    if not out and not environment:  # red only for what is missing in the sandbox: no task
        out.append(Finding(key=f"check:{check.name}", kind="check", check=check.name,
                           title=f"Make the {check.name} check pass ({check.status.value} on the base)",
                           details=[f"$ {' '.join(check.command)}", check.output.strip()[-OUTPUT_TAIL:]]))
    return out


def _test_finding(check: CheckResult, group: list[FailingTest]) -> Finding:
    """One finding for the failing tests of one cause: the first one's message and traceback stand for all."""
    first = group[0]
    functions = list(dict.fromkeys(function_of(t.test_id) for t in group))
    frame = failing_frame(first)
    if len(functions) == 1:
        key, title = f"test:{functions[0]}", f"Fix the failing test {functions[0]}"
        if len(group) > 1:
            title += f" ({len(group)} failing cases)"
    else:
        where = f"{frame[0]}:{frame[1]}" if frame else functions[0]
        key, title = f"cause:{where}", f"Fix the failure at {where} ({len(group)} failing tests)"
    details = [first.message.strip(), first.traceback.strip()]
    return Finding(key=key, kind="test", check=check.name, path=first.test_id.split("::")[0], test_id=functions[0],
                   test_ids=[t.test_id for t in group], title=title, details=[d for d in details if d])


def check_lines(report: CheckReport, findings: list[Finding]) -> list[CheckLine]:
    return [
        CheckLine(name=c.name, status=c.status.value, tests_run=c.tests.run if c.tests is not None else None,
                  tests_failing=(c.tests.failed + c.tests.errors) if c.tests is not None else 0,
                  findings=sum(len(f.details) for f in findings if f.check == c.name and f.kind == "finding"))
        for c in report.checks
    ]


async def checks_on_base(settings: Settings, repo: Path, base_sha: str, *,
                         opener: SandboxOpener | None = None) -> CheckReport:
    """The checks on a clean detached worktree of `base_sha`; the baseline is cached for the episodes."""
    path = (settings.data_dir / "worktrees" / f"scan-{uuid.uuid4().hex[:12]}").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(run_git, ["worktree", "add", "--force", "--detach", str(path), base_sha], repo)
    try:
        async with (opener or open_sandbox)(settings.sandbox, path) as box:
            report = await box.check(path)
    finally:
        await asyncio.to_thread(remove_worktree, repo, path)
    save_baseline(settings, Baseline.of(base_sha, report))
    return report


class Scan:
    """One scan session on a local repository (the GitHub App runs `checks_on_base` and `findings_of`
    itself and works each finding as its own job)."""

    def __init__(self, settings: Settings, llm: ModelClient, *, store: Any | None = None, bus: EventBus | None = None,
                 sandbox_opener: SandboxOpener | None = None) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.bus = bus or EventBus()
        self.opener = sandbox_opener

    async def run(self, repo_dir: Path, *, base: str = "HEAD", max_tasks: int = 5, dry_run: bool = False,
                  skip: Iterable[str] = (), on_finding: OnFinding | None = None) -> ScanReport:
        """Raises WorkspaceError / SandboxError when the repository or its checks cannot be used at all."""
        started, clock = utcnow(), time.perf_counter()
        repo = ensure_repository(repo_dir)
        sha = resolve_commit(repo, base)
        name = repo.name
        report = await checks_on_base(self.settings, repo, sha, opener=self.opener)
        findings = findings_of(report)
        skip = set(skip)
        todo = [f for f in findings if f.key not in skip]
        scan = ScanReport(
            run_id=uuid.uuid4().hex, repo=name, path=str(repo), base_sha=sha, dry_run=dry_run, started_at=started,
            checks_duration_s=round(time.perf_counter() - clock, 1), backend=report.backend,
            checks=check_lines(report, findings), findings=findings, skipped=[f.key for f in findings if f.key in skip],
            not_run=[f.key for f in todo[max_tasks:]],
        )
        todo = todo[:max_tasks]
        if todo and self.store is not None:
            self.store.create_run(scan.run_id, kind="scan", repo=name,
                                  params={"path": str(repo), "base": sha, "dry_run": dry_run, "findings": len(findings)})
        for number, finding in enumerate(todo, 1):
            if on_finding is not None:
                on_finding(number, len(todo), finding)
            try:
                scan.tasks.append(await self._work(scan, finding, number, repo, sha, dry_run))
            except ServerUnavailable as exc:
                scan.stopped = f"the model server is unavailable: {exc}"
                scan.not_run = [f.key for f in todo[number - 1:]] + scan.not_run
                break
        if todo and self.store is not None:
            errors = any(t.status == "error" for t in scan.tasks) or scan.stopped
            await asyncio.to_thread(self.store.finish_run, scan.run_id, "error" if errors else "completed")
        scan.finished_at = utcnow()
        scan.duration_s = round(time.perf_counter() - clock, 1)
        return scan

    async def _work(self, scan: ScanReport, finding: Finding, number: int, repo: Path, sha: str,
                    dry_run: bool) -> TaskOutcome:
        request = CycleRequest(run_id=scan.run_id, episode_number=number, repo_dir=repo, repo=scan.repo,
                               task=finding.task(scan.repo), base_ref=sha, dry_run=dry_run, kind="scan")
        runner = EpisodeRunner(self.settings, self.llm, store=self.store, bus=self.bus, sandbox_opener=self.opener)
        clock = time.perf_counter()
        try:
            result = await runner.run(request, owns_run=False)
        except ServerUnavailable:
            raise
        except (LLMError, WorkspaceError, SandboxError, GitError) as exc:
            return TaskOutcome(finding=finding.key, title=finding.title, status="error", error=str(exc),
                               duration_s=round(time.perf_counter() - clock, 1))
        return TaskOutcome.of(finding, result, time.perf_counter() - clock)


def write_report(scan: ScanReport, path: Path) -> tuple[Path, Path]:
    """The report as JSON at `path` and as Markdown beside it (same name, .md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scan.model_dump_json(indent=2), encoding="utf-8")
    markdown = path.with_suffix(".md") if path.suffix != ".md" else path.with_name(path.name + ".md")
    markdown.write_text(scan.markdown(), encoding="utf-8")
    return path, markdown
