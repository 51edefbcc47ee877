"""Git for a job, on top of the repository mirror: where the cycle starts, the repo config at that commit,
and an idempotent push. Blocking (git subprocesses): call from async code through `asyncio.to_thread`.

The installation token is an argument of the functions that talk to the remote and is used only in
git's environment (`bot.github.mirror.auth_env`); nothing here returns or stores it.
"""

from __future__ import annotations

from pathlib import Path

from bot.github.mirror import GIT_RETRY_BUDGET_S, auth_env, git_retrying
from bot.workspace import GitError, run_git
from sandbox.repo_config import CONFIG_PATH


class PushRejected(Exception):
    """The remote branch moved to a commit our push does not descend from."""


def point_mirror_head(mirror: Path, default_branch: str) -> None:
    """Give the bare mirror a HEAD that resolves (the default branch's fetched tip), as the cycle expects."""
    run_git(["update-ref", f"refs/heads/{default_branch}", f"refs/remotes/origin/{default_branch}"], mirror)
    run_git(["symbolic-ref", "HEAD", f"refs/heads/{default_branch}"], mirror)


def resolve(mirror: Path, ref: str) -> str:
    return run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], mirror).strip()


def merge_base(mirror: Path, a: str, b: str) -> str:
    """The best common ancestor of two commits; GitError when they share none (unrelated histories)."""
    try:
        return run_git(["merge-base", a, b], mirror).strip()
    except GitError as exc:
        raise GitError(["merge-base", a, b], exc.returncode, f"{a[:12]} and {b[:12]} have no commit in common, so "
                       "there is no trusted base to judge the change against") from exc


def set_branch(mirror: Path, branch: str, sha: str) -> None:
    """Point the local `branch` at `sha` (a bot PR's fetched head), whatever it pointed at before."""
    run_git(["update-ref", f"refs/heads/{branch}", sha], mirror)


def read_config_text(mirror: Path, commit: str) -> str | None:
    """`.github/aura-sicd.yml` as it is at `commit`, or None when that commit has no such file."""
    try:
        return run_git(["show", f"{commit}:{CONFIG_PATH}"], mirror)
    except GitError:
        return None


def remote_branch_sha(mirror: Path, clone_url: str, token: str | None, branch: str) -> str | None:
    """The branch's tip on the remote right now (not the last fetch), or None when it does not exist."""
    out = run_git(["ls-remote", "origin", f"refs/heads/{branch}"], mirror, env=auth_env(clone_url, token))
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def is_ancestor(mirror: Path, older: str, newer: str) -> bool:
    try:
        run_git(["merge-base", "--is-ancestor", older, newer], mirror)
    except GitError:
        return False
    return True


def push_commit(
    mirror: Path, clone_url: str, token: str | None, sha: str, branch: str, *,
    retry_budget_s: float = GIT_RETRY_BUDGET_S, backoff_s: float = 1.0,
) -> bool:
    """Make the remote `branch` point at `sha`, fast-forward only; False when it already did.

    The remote is asked first, so a job resumed after a crash between pushing and recording the push
    does not push again. Never forced: if someone else moved the branch, `PushRejected`. A transient
    failure (network, 5xx, 429) is retried, asking the remote again first, for `retry_budget_s`.
    """
    for attempt in git_retrying(retry_budget_s, backoff_s=backoff_s):
        with attempt:
            return _push_once(mirror, clone_url, token, sha, branch)
    raise AssertionError("unreachable: tenacity reraises the last failure")


def _push_once(mirror: Path, clone_url: str, token: str | None, sha: str, branch: str) -> bool:
    current = remote_branch_sha(mirror, clone_url, token, branch)
    if current == sha:
        return False
    if current is not None and not is_ancestor(mirror, current, sha):
        raise PushRejected(f"{branch} moved on the remote to {current[:12]}, which {sha[:12]} does not build on")
    run_git(["push", "--quiet", "origin", f"{sha}:refs/heads/{branch}"], mirror, env=auth_env(clone_url, token))
    run_git(["update-ref", f"refs/remotes/origin/{branch}", sha], mirror)
    return True
