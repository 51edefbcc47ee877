"""What a scan finds and what became of it: findings, task outcomes, and the session report (JSON and Markdown)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from bot.cycle.episode import EpisodeResult
from bot.records import Task

FindingKind = Literal["test", "finding", "check"]
MAX_DETAIL_CHARS = 3000


class Finding(BaseModel):
    """One piece of work found on the base: a failing test, one file's lint or type findings, or a red
    check that says nothing more precise."""

    key: str  # stable across scans: "test:<id>", "<check>:<path>", "check:<check>"
    kind: FindingKind
    check: str
    path: str | None = None  # the test's or the findings' file
    test_id: str | None = None  # the test function (its parametrized cases are in test_ids)
    test_ids: list[str] = Field(default_factory=list)  # every failing test of one cause (bot/runs/causes.py)
    title: str
    details: list[str] = Field(default_factory=list)  # messages, a traceback, the check's output

    def task(self, repo: str) -> Task:
        detail = "\n".join(self.details)[-MAX_DETAIL_CHARS:]
        if self.kind == "test":
            which = f"The test `{self.test_id}` fails"
            if len(self.test_ids) > 1:
                listed = ", ".join(f"`{t}`" for t in self.test_ids[:8]) + (", ..." if len(self.test_ids) > 8 else "")
                which = f"{len(self.test_ids)} tests fail for one cause ({listed})"
            body = (f"{which} on the base commit (the `{self.check}` check):\n\n```\n{detail}\n```\n\n"
                    "Find the cause in the code under test and fix it; change the test only if the test itself is wrong.")
        elif self.kind == "finding":
            body = (f"The `{self.check}` check reports these findings in `{self.path}` on the base commit:\n\n"
                    f"```\n{detail}\n```\n\nFix each of them without changing what the code does.")
        else:
            body = f"The `{self.check}` check fails on the base commit:\n\n```\n{detail}\n```\n\nMake it pass."
        files = [self.path] if self.path else []
        return Task(title=self.title, body=body, files=files, source=f"scan:{self.key}", repo=repo)


class TaskOutcome(BaseModel):
    finding: str  # the finding's key
    title: str
    status: str  # approved | exhausted | no_change | error
    episode_id: str | None = None
    branch: str | None = None  # kept only for an approved fix outside a dry run
    commit: str | None = None
    iterations: int = 0
    best_reward: float | None = None
    tokens: int = 0
    duration_s: float = 0.0
    error: str | None = None

    @classmethod
    def of(cls, finding: Finding, result: EpisodeResult, duration_s: float) -> TaskOutcome:
        episode = result.episode
        if episode is None:
            return cls(finding=finding.key, title=finding.title, status="error", error=result.error,
                       duration_s=round(duration_s, 1))
        commit = episode.outcomes.commit
        return cls(
            finding=finding.key, title=finding.title, status=result.status, episode_id=episode.episode_id,
            branch=episode.context.branch if commit else None, commit=commit,
            iterations=len({r.number for r in episode.iterations}), best_reward=episode.outcomes.best_reward,
            tokens=episode.metrics.tokens_used + sum(c.prompt_tokens + c.completion_tokens for c in result.error_calls),
            duration_s=round(duration_s, 1), error=result.error,
        )


class CheckLine(BaseModel):
    name: str
    status: str
    tests_run: int | None = None
    tests_failing: int = 0
    findings: int = 0


class ScanReport(BaseModel):
    run_id: str
    repo: str
    path: str
    base_sha: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = 0.0
    checks_duration_s: float = 0.0
    backend: str = ""
    checks: list[CheckLine] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    tasks: list[TaskOutcome] = Field(default_factory=list)
    not_run: list[str] = Field(default_factory=list)  # findings beyond --max-tasks, or after the model server failed
    skipped: list[str] = Field(default_factory=list)  # findings the caller asked to leave alone
    stopped: str | None = None  # why the scan ended early

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.tasks)

    @property
    def approved(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.status == "approved"]

    def markdown(self) -> str:
        lines = [
            f"# Scan of {self.repo} at {self.base_sha[:12]}",
            "",
            f"- run `{self.run_id}`{' (dry run: no branches kept)' if self.dry_run else ''}",
            f"- {len(self.findings)} finding(s); {len(self.tasks)} worked, {len(self.approved)} approved",
            (f"- {self.tokens} tokens; {self.duration_s:.0f} s in all ({self.checks_duration_s:.0f} s for the checks "
             f"on the base, {self.backend} sandbox)"),
        ]
        if self.stopped:
            lines.append(f"- stopped early: {self.stopped}")
        lines += ["", "## Checks on the base", "", "| check | status | tests run | failing | findings |", "|---|---|---|---|---|"]
        for c in self.checks:
            run = "" if c.tests_run is None else str(c.tests_run)
            lines.append(f"| {c.name} | {c.status} | {run} | {c.tests_failing or ''} | {c.findings or ''} |")
        lines += ["", "## Findings", ""]
        outcomes = {t.finding: t for t in self.tasks}
        if not self.findings:
            lines.append("Nothing to do: every check is green on the base.")
        for f in self.findings:
            state = ("skipped (asked to leave alone)" if f.key in self.skipped
                     else "not run" if f.key in self.not_run else outcomes[f.key].status if f.key in outcomes else "")
            lines.append(f"- `{f.key}`: {f.title} — {state}")
        if self.tasks:
            lines += ["", "## Tasks", "", "| finding | outcome | iterations | best reward | branch | tokens | time |",
                      "|---|---|---|---|---|---|---|"]
            for t in self.tasks:
                reward = "-" if t.best_reward is None else f"{t.best_reward:.3f}"
                branch = f"`{t.branch}`" if t.branch else "-"
                outcome = t.status + (f" ({t.error[:80]})" if t.error else "")
                lines.append(f"| `{t.finding}` | {outcome} | {t.iterations} | {reward} | {branch} | {t.tokens} | {t.duration_s:.0f} s |")
        return "\n".join(lines) + "\n"
