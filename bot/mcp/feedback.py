"""`code_feedback`: the cycle on one file's code, no repository needed.

The code (and its tests, when given) goes into a throwaway git repository under the data directory; the
episode runs there like any other (sandboxed checks of the file's language, the discriminator's rubric,
the agitator's guidance), as a dry run, and the repository is removed afterwards. What comes back is
the iteration history: each attempt's diff, checks, reward and the guidance it led to, plus the best
version of the file.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from bot.mcp.results import IterationTrace
from bot.records import Episode, Task
from bot.workspace import run_git
from sandbox.repo_config import CONFIG_PATH

DEFAULT_TASK = ("Review this code and improve it: fix bugs and unhandled edge cases, keep the behaviour that is "
                "correct, and keep it readable and well formatted. Add or fix tests that show the change works.")
MAX_CODE_CHARS = 200_000


class FeedbackInputError(ValueError):
    """The tool's arguments cannot be used (a bad path, empty code)."""


class FeedbackResult(BaseModel):
    run_id: str
    file_path: str
    verdict: str  # approved | exhausted | no_change | error
    best_reward: float | None = None
    rewards: list[float | None] = Field(default_factory=list)  # per attempt, in order
    guidance: list[str] = Field(default_factory=list)  # the agitator's guidance, in order
    iterations: list[IterationTrace] = Field(default_factory=list)
    improved_code: str | None = None  # the file after the best attempt; None when it was not changed
    error: str | None = None


def relative_file_path(file_path: str) -> str:
    """A safe path inside the throwaway repository: relative, no `..`, not in .git."""
    text = (file_path or "").strip().replace("\\", "/")
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts or not path.name or path.parts[0] == ".git":
        raise FeedbackInputError(f"file_path must be a relative path such as src/app.py, got {file_path!r}")
    if path.as_posix() == CONFIG_PATH:  # it would decide which checks run on the code
        raise FeedbackInputError(f"{CONFIG_PATH} is the bot's configuration, not code to review")
    return path.as_posix()


def default_test_path(file_path: str) -> str:
    return f"tests/test_{PurePosixPath(file_path).stem}.py"


def make_throwaway_repo(root: Path, files: dict[str, str]) -> Path:
    """A fresh git repository under `root` holding `files`, committed once."""
    repo = root / uuid.uuid4().hex
    repo.mkdir(parents=True)
    run_git(["init", "-q", "-b", "main"], repo)
    for rel, text in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    run_git(["add", "-A"], repo)
    run_git(["commit", "-q", "--no-verify", "-m", "the code to review"], repo)
    return repo


def feedback_task(file_path: str, code_files: dict[str, str], instructions: str | None) -> Task:
    body = (instructions or DEFAULT_TASK).strip()
    others = [p for p in code_files if p != file_path]
    if others:
        body += "\n\nTests for it are in " + ", ".join(f"`{p}`" for p in others) + "."
    return Task(title=f"Improve {file_path}", body=body, files=[file_path], source="mcp:code_feedback",
                repo="mcp-code-feedback")


def improved_code(repo: Path, episode: Episode, file_path: str) -> str | None:
    """The file as the best attempt left it, or None when no attempt changed it."""
    diff = episode.outcomes.best_diff
    if not diff:
        return None
    run_git(["apply", "--binary", "--whitespace=nowarn", "-"], repo, input=diff)
    target = repo / file_path
    text = target.read_text(encoding="utf-8") if target.is_file() else ""
    run_git(["checkout", "--quiet", "--", "."], repo)
    return text


def feedback_result(run_id: str, file_path: str, episode: Episode | None, improved: str | None,
                    error: str | None = None) -> FeedbackResult:
    if episode is None:
        return FeedbackResult(run_id=run_id, file_path=file_path, verdict="error", error=error)
    traces = [IterationTrace.of(r, with_diff=True) for r in episode.iterations]
    return FeedbackResult(
        run_id=run_id, file_path=file_path, verdict="error" if error else episode.status.value,
        best_reward=episode.outcomes.best_reward, rewards=[t.reward for t in traces],
        guidance=[t.guidance for t in traces if t.guidance], iterations=traces,
        improved_code=improved, error=error,
    )


async def remove_repo(repo: Path) -> None:
    await asyncio.to_thread(shutil.rmtree, repo, True)
