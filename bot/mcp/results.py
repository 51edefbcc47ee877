"""What the MCP tools return: an episode as a verdict, its reward trace and the PR text; the path roots.

Plain Pydantic models, so FastMCP advertises their JSON schema and returns them as structured content.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from bot.records import Episode, IterationRecord, Rubric


class PathOutsideRoots(ValueError):
    """A path the server may not touch: outside every root it was started with."""


class Roots:
    """The directories a server may work in, fixed at start (`--root DIR`, repeatable)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = [Path(d).expanduser().resolve() for d in dirs]
        for d in self.dirs:
            if not d.is_dir():
                raise ValueError(f"--root {d} is not a directory")

    def resolve(self, path: str) -> Path:
        """`path` resolved (relative paths against the first root), if it lies inside a root."""
        if not self.dirs:
            raise PathOutsideRoots("this server was started without --root DIR, so it may not open repositories")
        raw = Path(path).expanduser()
        resolved = (raw if raw.is_absolute() else self.dirs[0] / raw).resolve()
        if not any(resolved.is_relative_to(d) for d in self.dirs):
            allowed = ", ".join(str(d) for d in self.dirs)
            raise PathOutsideRoots(f"{path} is outside the roots this server may use ({allowed})")
        return resolved


class IterationTrace(BaseModel):
    """One attempt: how it ended, its reward and why, and the guidance it led to."""

    number: int
    candidate: int = 0
    status: str
    reward: float | None = None
    pass_rate: float | None = None
    rubric: Rubric | None = None
    checks: dict[str, str] = Field(default_factory=dict)  # check name -> status
    reasons: list[str] = Field(default_factory=list)
    error: str | None = None
    guidance: str | None = None  # the agitator's guidance for the next attempt
    files: list[str] = Field(default_factory=list)
    diff: str = ""

    @classmethod
    def of(cls, record: IterationRecord, *, with_diff: bool = False) -> IterationTrace:
        guidance = None
        if record.guidance_out is not None:
            g = record.guidance_out
            parts = [g.guidance, *(f"Focus on: {p}" for p in g.focus_points),
                     *(f"{i}. {s}" for i, s in enumerate(g.improvement_plan, 1))]
            guidance = "\n".join(parts)
        return cls(
            number=record.number, candidate=record.candidate, status=record.status.value,
            reward=record.reward.value if record.reward else None,
            pass_rate=record.reward.pass_rate if record.reward else None, rubric=record.rubric,
            checks={c.name: c.status.value for c in record.check_report.checks} if record.check_report else {},
            reasons=list(record.reward.reasons) if record.reward else [],
            error=record.error or record.apply_error, guidance=guidance,
            files=[c.file_path for c in record.proposal.changes] if record.proposal else [],
            diff=record.diff if with_diff else "",
        )


class ImproveResult(BaseModel):
    run_id: str
    episode_id: str | None = None
    verdict: str  # approved | exhausted | no_change | error
    dry_run: bool
    branch: str | None = None  # the branch holding the approved commit (none on a dry run)
    commit: str | None = None
    best_reward: float | None = None
    pr_title: str = ""
    pr_body: str = ""
    reward_trace: list[IterationTrace] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # e.g. "SAFE_MODE is on: ran as a dry run"
    error: str | None = None


def improve_result(run_id: str, episode: Episode | None, *, dry_run: bool, error: str | None = None,
                   notes: list[str] | None = None) -> ImproveResult:
    from bot.pr_body import render_pr

    if episode is None:
        return ImproveResult(run_id=run_id, verdict="error", dry_run=dry_run, error=error, notes=notes or [])
    title, body = ("", "") if episode.status.value == "no_change" else render_pr(episode)
    commit = episode.outcomes.commit
    return ImproveResult(
        run_id=run_id, episode_id=episode.episode_id, verdict="error" if error else episode.status.value,
        dry_run=dry_run, branch=episode.context.branch if commit else None, commit=commit,
        best_reward=episode.outcomes.best_reward, pr_title=title, pr_body=body,
        reward_trace=[IterationTrace.of(r) for r in episode.iterations], notes=notes or [], error=error,
    )
