"""Real git: a bare mirror per repository and a worktree per job, the token only in git's environment."""

from __future__ import annotations

import base64
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from bot.github import mirror as mirror_module
from bot.github.mirror import RepoMirror, auth_env
from bot.jobs import git as jobgit
from bot.jobs.git import push_commit
from bot.workspace import GitError
from tests.repos import git, make_repo

TOKEN = "ghs_FAKEmirrorTOKEN0123456789"
REPO = "octo/calc"


@pytest.fixture
def origin(tmp_path) -> Path:
    """A bare repository standing in for GitHub, with main and a PR head ref."""
    work = make_repo(tmp_path / "work", {"calc.py": "def add(a, b):\n    return a - b\n"})
    git(work, "checkout", "-q", "-b", "feature")
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git(work, "commit", "-qam", "fix add")
    git(work, "checkout", "-q", "main")
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    feature = git(bare, "rev-parse", "feature").strip()
    git(bare, "update-ref", "refs/pull/7/head", feature)
    return bare


@pytest.fixture
def recorded_git(monkeypatch):
    """Every git invocation's argv and the extra environment given to it."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    real = mirror_module.run_git

    def spy(args, cwd, *, env=None, **kwargs):
        calls.append((list(args), dict(env or {})))
        return real(args, cwd, env=env, **kwargs)

    monkeypatch.setattr(mirror_module, "run_git", spy)
    monkeypatch.setattr(jobgit, "run_git", spy)  # pushing a job's commit
    return calls


def test_sync_worktree_commit_push(tmp_path, origin, recorded_git):
    mirror = RepoMirror(tmp_path / "data")
    path = mirror.sync(REPO, str(origin), TOKEN, pull_numbers=(7,))
    assert path == tmp_path / "data" / "mirrors" / "octo" / "calc.git"
    assert (path / "HEAD").exists() and not (path / "calc.py").exists()  # bare

    tree = mirror.add_worktree(REPO, "job1", start="origin/main", branch="aura-sicd/0123456789ab")
    assert (tree / "calc.py").read_text().endswith("return a - b\n")
    (tree / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git(tree, "commit", "-qam", "Fix add")
    sha = mirror.head_sha(tree)
    assert push_commit(path, str(origin), TOKEN, sha, "aura-sicd/0123456789ab")
    assert git(origin, "rev-parse", "aura-sicd/0123456789ab").strip() == sha
    assert mirror.remote_sha(REPO, "aura-sicd/0123456789ab") == sha
    # pushing the same commit again changes nothing (a resumed job may)
    assert not push_commit(path, str(origin), TOKEN, sha, "aura-sicd/0123456789ab")

    # a foreign PR's head is fetched by number
    pr_tree = mirror.add_worktree(REPO, "job2", start="origin/pull/7", branch="aura-sicd/feedfeedfeed")
    assert (pr_tree / "calc.py").read_text().endswith("return a + b\n")

    mirror.remove_worktree(REPO, "job1")
    assert not tree.exists()
    for argv, _ in recorded_git:
        assert TOKEN not in " ".join(argv)


def test_the_next_job_fetches_instead_of_cloning(tmp_path, origin, recorded_git):
    mirror = RepoMirror(tmp_path / "data")
    mirror.sync(REPO, str(origin), None)
    work = tmp_path / "work"
    (work / "NEW.md").write_text("new\n")
    git(work, "add", "NEW.md")
    git(work, "commit", "-qm", "new file")
    git(work, "push", "-q", str(origin), "main")
    recorded_git.clear()
    mirror.sync(REPO, str(origin), None)
    assert [argv[0] for argv, _ in recorded_git] == ["remote", "fetch"]
    tree = mirror.add_worktree(REPO, "job3", start="origin/main", branch="aura-sicd/aaaaaaaaaaaa")
    assert (tree / "NEW.md").exists()


def test_token_goes_in_the_environment_never_in_config(tmp_path, origin, recorded_git):
    url = "https://github.com/octo/calc.git"
    env = auth_env(url, TOKEN)
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {expected}"
    assert auth_env(str(origin), TOKEN) == {}  # local remotes take no header

    mirror = RepoMirror(tmp_path / "data")
    path = mirror.sync(REPO, str(origin), TOKEN)
    tree = mirror.add_worktree(REPO, "job", start="origin/main", branch="aura-sicd/bbbbbbbbbbbb")
    git(tree, "commit", "-q", "--allow-empty", "-m", "empty")
    push_commit(path, str(origin), TOKEN, mirror.head_sha(tree), "aura-sicd/bbbbbbbbbbbb")
    for config in [path / "config", *path.rglob("config*")]:
        if config.is_file():
            assert TOKEN not in config.read_text(errors="replace")
            assert "extraheader" not in config.read_text(errors="replace").lower()
    assert "[http" not in (path / "config").read_text()


class _RecordingHandler(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_header_reaches_an_https_style_remote(tmp_path):
    """Over HTTP, git sends exactly the Authorization header from the environment (seen by a local server)."""
    _RecordingHandler.seen = []
    server = HTTPServer(("127.0.0.1", 0), _RecordingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/octo/calc.git"
        mirror = RepoMirror(tmp_path / "data")
        with pytest.raises(GitError) as info:
            mirror.sync(REPO, url, TOKEN)
    finally:
        server.shutdown()
    expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert _RecordingHandler.seen and set(_RecordingHandler.seen) == {f"Basic {expected}"}
    assert TOKEN not in str(info.value)
    assert TOKEN not in (tmp_path / "data" / "mirrors" / "octo" / "calc.git" / "config").read_text()


def test_unsafe_names_are_refused(tmp_path):
    mirror = RepoMirror(tmp_path)
    for bad in ("../etc", "octo/..", "octo", "a/b/c"):
        with pytest.raises(ValueError):
            mirror.mirror_path(bad)
    with pytest.raises(ValueError):
        mirror.worktree_path(REPO, "../escape")
