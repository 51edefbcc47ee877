"""Git plumbing for the cycle: a worktree per job on its own branch, so the caller's checkout is never touched."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

BOT_NAME = "aura-sicd[bot]"
BOT_EMAIL = "aura-sicd[bot]@users.noreply.github.com"


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str):
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()[:2000]}")


def run_git(
    args: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 600.0,
) -> str:
    """Run git with a fixed identity and no prompts; return stdout. Extra `env` is added, never logged."""
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr)
    return proc.stdout


class WorkspaceError(Exception):
    """The repository cannot be used as asked (not a git repository, unknown ref, branch taken)."""


class Workspace(BaseModel):
    """A worktree of `source_repo` on `branch`; every attempt starts again from `base_sha`."""

    source_repo: Path
    path: Path
    branch: str
    base_sha: str
    proposal_id: str


def resolve_commit(repo: Path, ref: str) -> str:
    try:
        return run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo).strip()
    except GitError as exc:
        raise WorkspaceError(f"{ref!r} is not a commit in {repo}") from exc


def ensure_repository(repo: Path) -> Path:
    repo = repo.expanduser().resolve()
    if not repo.is_dir():
        raise WorkspaceError(f"{repo} is not a directory")
    try:
        run_git(["rev-parse", "--git-dir"], repo)
    except GitError as exc:
        raise WorkspaceError(f"{repo} is not a git repository (run `git init` and commit first)") from exc
    try:
        run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo)
    except GitError as exc:
        raise WorkspaceError(f"{repo} has no commits yet: commit the code the task is about first") from exc
    return repo


def worktrees_dir_for(data_dir: Path, repo: str, repo_dir: Path) -> Path:
    """Where one repository's worktrees live: by its name and source path, so two repositories whose
    proposals get the same id never share (or remove) each other's worktree."""
    source = Path(repo_dir).expanduser().resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", repo or source.name).strip("._") or "repo"
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    return Path(data_dir) / "worktrees" / f"{name[:80]}-{digest}"


def create_worktree(
    repo: Path, *, base_ref: str, branch: str, proposal_id: str, worktrees_dir: Path, existing_branch: bool = False
) -> Workspace:
    """A new worktree for the job. With `existing_branch`, continue `branch` (a bot PR) from its head."""
    repo = ensure_repository(repo)
    worktrees_dir.mkdir(parents=True, exist_ok=True)
    path = (worktrees_dir / proposal_id).resolve()
    if path.exists():
        remove_worktree(repo, path)
    if existing_branch:
        base_sha = resolve_commit(repo, f"refs/heads/{branch}")
        run_git(["worktree", "add", "--force", str(path), branch], repo)
    else:
        base_sha = resolve_commit(repo, base_ref)
        try:
            current = resolve_commit(repo, f"refs/heads/{branch}")
        except WorkspaceError:
            current = None
        if current not in (None, base_sha):
            raise WorkspaceError(f"branch {branch} already exists in {repo} with other commits; delete it or pick another task")
        run_git(["worktree", "add", "--force", "-B", branch, str(path), base_sha], repo)
    return Workspace(source_repo=repo, path=path, branch=branch, base_sha=base_sha, proposal_id=proposal_id)


def ensure_worktree(ws: Workspace) -> None:
    """Recreate the worktree after a restart elsewhere (a resumed job); no-op when it is there.

    The branch is recreated at the base commit when it is gone too (a finished episode without a commit
    deletes it; a job replayed after a crash may look at its worktree again).
    """
    if (ws.path / ".git").exists():
        return
    if ws.path.exists():
        shutil.rmtree(ws.path, ignore_errors=True)  # a half-made directory from an interrupted `worktree add`
    run_git(["worktree", "prune"], ws.source_repo)
    if run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{ws.branch}"], ws.source_repo, check=False).strip():
        run_git(["worktree", "add", "--force", str(ws.path), ws.branch], ws.source_repo)
    else:
        run_git(["worktree", "add", "--force", "-b", ws.branch, str(ws.path), ws.base_sha], ws.source_repo)


def reset_worktree(ws: Workspace) -> None:
    ensure_worktree(ws)
    run_git(["reset", "--quiet", "--hard", ws.base_sha], ws.path)
    run_git(["clean", "-fdxq"], ws.path)


def worktree_diff(ws: Workspace) -> str:
    """Everything changed against the base, new files included, as a binary-safe patch."""
    run_git(["add", "--all"], ws.path)
    diff = run_git(["diff", "--cached", "--binary", ws.base_sha], ws.path)
    run_git(["reset", "--quiet"], ws.path)
    return diff


def apply_diff(ws: Workspace, diff: str, *, only: list[str] | None = None) -> None:
    """Bring the worktree to base + diff (used to restore an attempt's state in a later step); with
    `only`, just those paths' part of the diff."""
    reset_worktree(ws)
    if diff and only != []:
        include = [f"--include={path}" for path in only or []]
        run_git(["apply", "--binary", "--whitespace=nowarn", *include, "-"], ws.path, input=diff)


def commit_diff(ws: Workspace, diff: str, message: str, trailers: dict[str, str]) -> str:
    """One commit on the branch with `diff` and trailers; idempotent when the same commit is already there."""
    ensure_worktree(ws)
    head = run_git(["rev-parse", "HEAD"], ws.path).strip()
    if head != ws.base_sha:
        body = run_git(["log", "-1", "--format=%B", head], ws.path)
        if all(trailer(key, value) in body for key, value in trailers.items()):
            return head
    apply_diff(ws, diff)
    run_git(["add", "--all"], ws.path)
    return commit_staged(ws.path, message, trailers)


RUN_TRAILER = "Aura-Run-Id"  # every commit the bot makes names the run it came from


def trailer(key: str, value: str) -> str:
    """One git trailer line: `Aura-Run-Id: 3f2a…`."""
    return f"{key}: {value}"


def commit_staged(path: Path, message: str, trailers: Mapping[str, str]) -> str:
    """Commit what is staged in `path` with `message` and its trailers after a blank line; the new HEAD."""
    trailer_text = "\n".join(trailer(key, value) for key, value in trailers.items())
    run_git(["commit", "--quiet", "--no-verify", "-F", "-"], path, input=f"{message.strip()}\n\n{trailer_text}\n")
    return run_git(["rev-parse", "HEAD"], path).strip()


def remove_worktree(repo: Path, path: Path) -> None:
    run_git(["worktree", "remove", "--force", str(path)], repo, check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    run_git(["worktree", "prune"], repo, check=False)


def delete_branch(repo: Path, branch: str) -> None:
    run_git(["branch", "-D", branch], repo, check=False)
