"""Pushing from the mirror: asks the remote first, fast-forward only, never forced."""

from __future__ import annotations

import pytest

from bot.github.mirror import RepoMirror
from bot.jobs.git import PushRejected, point_mirror_head, push_commit, read_config_text, resolve
from bot.workspace import run_git
from tests.jobs.conftest import make_remote
from tests.repos import git


def test_push_is_idempotent_and_refuses_to_rewrite_a_moved_branch(tmp_path):
    remote = make_remote(tmp_path / "origin")
    mirror = RepoMirror(tmp_path / "data").sync("octo/calc", str(remote), None)
    point_mirror_head(mirror, "main")
    base = resolve(mirror, "HEAD")
    tree = run_git(["rev-parse", f"{base}^{{tree}}"], mirror).strip()
    ours = run_git(["commit-tree", tree, "-p", base, "-m", "ours"], mirror).strip()

    assert push_commit(mirror, str(remote), None, ours, "aura-sicd/abc") is True
    assert git(remote, "rev-parse", "refs/heads/aura-sicd/abc").strip() == ours
    assert push_commit(mirror, str(remote), None, ours, "aura-sicd/abc") is False  # a resumed job: no second push

    theirs = run_git(["commit-tree", tree, "-p", base, "-m", "someone else"], mirror).strip()
    run_git(["push", "-q", "--force", "origin", f"{theirs}:refs/heads/aura-sicd/abc"], mirror)
    with pytest.raises(PushRejected, match="moved on the remote"):
        push_commit(mirror, str(remote), None, ours, "aura-sicd/abc")
    assert git(remote, "rev-parse", "refs/heads/aura-sicd/abc").strip() == theirs


def test_repo_config_is_read_at_the_commit(tmp_path):
    remote = make_remote(tmp_path / "origin", {"a.py": "x = 1\n", ".github/aura-sicd.yml": "max_iterations: 3\n"})
    mirror = RepoMirror(tmp_path / "data").sync("octo/calc", str(remote), None)
    point_mirror_head(mirror, "main")
    assert read_config_text(mirror, resolve(mirror, "HEAD")) == "max_iterations: 3\n"
    bare = make_remote(tmp_path / "plain", {"a.py": "x = 1\n"})
    mirror2 = RepoMirror(tmp_path / "data2").sync("octo/plain", str(bare), None)
    point_mirror_head(mirror2, "main")
    assert read_config_text(mirror2, resolve(mirror2, "HEAD")) is None
