"""A push that fails transiently is retried within a time budget (issue 10, item 3)."""

from __future__ import annotations

import pytest

import bot.jobs.git as jobgit
from bot.github.mirror import RepoMirror
from bot.jobs.git import point_mirror_head, push_commit, resolve
from bot.workspace import GitError, run_git
from tests.jobs.conftest import make_remote
from tests.repos import git

HTTP_500 = "error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500\nfatal: the remote end hung up unexpectedly"


@pytest.fixture
def setup(tmp_path):
    remote = make_remote(tmp_path / "origin")
    mirror = RepoMirror(tmp_path / "data").sync("octo/calc", str(remote), None)
    point_mirror_head(mirror, "main")
    base = resolve(mirror, "HEAD")
    tree = run_git(["rev-parse", f"{base}^{{tree}}"], mirror).strip()
    commit = run_git(["commit-tree", tree, "-p", base, "-m", "ours"], mirror).strip()
    return remote, mirror, commit


def failing_pushes(monkeypatch, times: int, stderr: str = HTTP_500) -> list[list[str]]:
    """git's `push` fails `times` times as a server answering 500 would; everything else runs for real."""
    calls: list[list[str]] = []

    def run(args, cwd, **kwargs):
        if args[0] == "push":
            calls.append(args)
            if len(calls) <= times:
                raise GitError(args, 128, stderr)
        return run_git(args, cwd, **kwargs)

    monkeypatch.setattr(jobgit, "run_git", run)
    return calls


def test_a_push_that_fails_once_with_http_500_is_retried(setup, monkeypatch):
    remote, mirror, commit = setup
    pushes = failing_pushes(monkeypatch, 1)
    assert push_commit(mirror, str(remote), None, commit, "aura-sicd/abc", backoff_s=0.01) is True
    assert len(pushes) == 2
    assert git(remote, "rev-parse", "refs/heads/aura-sicd/abc").strip() == commit


def test_a_push_failing_past_the_budget_raises_the_last_error(setup, monkeypatch):
    remote, mirror, commit = setup
    pushes = failing_pushes(monkeypatch, 1000)
    with pytest.raises(GitError, match="HTTP 500"):
        push_commit(mirror, str(remote), None, commit, "aura-sicd/abc", retry_budget_s=0.3, backoff_s=0.05)
    assert 2 <= len(pushes) <= 10


def test_a_refused_push_is_not_retried(setup, monkeypatch):
    remote, mirror, commit = setup
    pushes = failing_pushes(monkeypatch, 1000, "remote: Permission to octo/calc.git denied to bot.\nfatal: unable to access: The requested URL returned error: 403")
    with pytest.raises(GitError, match="403"):
        push_commit(mirror, str(remote), None, commit, "aura-sicd/abc", backoff_s=0.01)
    assert len(pushes) == 1
