"""Git for jobs: one cached bare mirror per repository, one worktree per job, the token only in memory.

The mirror lives at `<data_dir>/mirrors/<owner>/<name>.git` and is updated with `fetch` (never a fresh
full clone per job). Each job works in `<data_dir>/worktrees/<owner>__<name>/<job id>` on a branch of
its own. The remote URL is built from the configured GitHub host (`Settings.clone_url`), never taken
from a delivery, so the origin changes only when the configuration does; the installation token travels as an
`http.<origin>/.extraHeader` set through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0`/`GIT_CONFIG_VALUE_0` in
git's environment — never in argv (visible in `ps`), never in a config file, never logged.

The methods block (git runs as a subprocess): call them from async code with `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from bot.workspace import GitError, run_git

log = logging.getLogger(__name__)

_SAFE_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
GIT_RETRY_BUDGET_S = 300.0  # how long one git network operation may keep retrying transient failures
_TRANSIENT = (
    "could not resolve host",
    "returned error: 429",
    "http 429",
    "gnutls",
    "ssl_read",
    "timed out",
    "connection timed out",
    "connection reset",
    "failed to connect",
    "early eof",
    "the remote end hung up unexpectedly",
    "http 5",
    "returned error: 5",
    "operation timed out",
    "rpc failed",
)


def is_transient_git(exc: BaseException) -> bool:
    """A network fault or a 5xx/429 from the server: the same git command may succeed later."""
    return isinstance(exc, GitError) and any(marker in exc.stderr.lower() for marker in _TRANSIENT)


def git_retrying(budget_s: float = GIT_RETRY_BUDGET_S, *, backoff_s: float = 1.0) -> Retrying:
    """Retry transient git failures with exponential backoff (at most 30 s apart) for `budget_s` in all."""
    return Retrying(
        retry=retry_if_exception(is_transient_git),
        stop=stop_after_delay(budget_s),
        wait=wait_exponential(multiplier=backoff_s, max=30),
        reraise=True,
        before_sleep=lambda state: log.warning("git failed transiently (%s); retrying", state.outcome.exception()),
    )


def auth_env(clone_url: str, token: str | None) -> dict[str, str]:
    """git environment that sends `token` to the clone URL's origin only, as GitHub expects it."""
    if not token:
        return {}
    parts = urlsplit(clone_url)
    if parts.scheme not in ("http", "https"):
        return {}  # local paths and file:// remotes take no header
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class RepoMirror:
    def __init__(self, data_dir: Path, *, timeout_s: float = 600.0, retry_budget_s: float = GIT_RETRY_BUDGET_S) -> None:
        self.mirrors = data_dir / "mirrors"
        self.worktrees = data_dir / "worktrees"
        self.timeout_s = timeout_s
        self.retry_budget_s = retry_budget_s

    def mirror_path(self, repo: str) -> Path:
        owner, name = _split(repo)
        return self.mirrors / owner / f"{name}.git"

    def worktree_path(self, repo: str, job_id: str) -> Path:
        owner, name = _split(repo)
        if not _SAFE_PART.match(job_id):
            raise ValueError(f"job id {job_id!r} is not a safe directory name")
        return self.worktrees / f"{owner}__{name}" / job_id

    def sync(self, repo: str, clone_url: str, token: str | None, *, pull_numbers: tuple[int, ...] = ()) -> Path:
        """Create the mirror if needed and fetch every branch (and the given PRs' heads) into it."""
        path = self.mirror_path(repo)
        with self._locked(path):
            if not (path / "HEAD").exists():
                path.mkdir(parents=True, exist_ok=True)
                self._git(["init", "--bare", "--quiet"], path)
                self._git(["remote", "add", "origin", clone_url], path)
                self._git(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], path)
                self._git(["config", "gc.auto", "0"], path)  # no surprise gc while worktrees read
            elif (current := self._git(["remote", "get-url", "origin"], path).strip()) != clone_url:
                log.warning("mirror of %s: origin moves from %s to %s (the configured GitHub host changed)",
                            repo, current, clone_url)
                self._git(["remote", "set-url", "origin", clone_url], path)
            refspecs = [f"+refs/pull/{n}/head:refs/remotes/origin/pull/{n}" for n in pull_numbers]
            self._fetch(path, clone_url, token, ["+refs/heads/*:refs/remotes/origin/*", *refspecs])
        return path

    def add_worktree(self, repo: str, job_id: str, *, start: str, branch: str) -> Path:
        """A fresh worktree on `branch`, created at `start` (e.g. `origin/main`, `origin/pull/7`)."""
        mirror = self.mirror_path(repo)
        path = self.worktree_path(repo, job_id)
        with self._locked(mirror):
            if path.exists():
                self._remove(mirror, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._git(["worktree", "add", "--quiet", "--force", "-B", branch, str(path), start], mirror)
        return path

    def remove_worktree(self, repo: str, job_id: str) -> None:
        mirror = self.mirror_path(repo)
        with self._locked(mirror):
            self._remove(mirror, self.worktree_path(repo, job_id))

    def head_sha(self, worktree: Path) -> str:
        return self._git(["rev-parse", "HEAD"], worktree).strip()

    def remote_sha(self, repo: str, branch: str) -> str | None:
        """The last fetched tip of `branch` on the remote, or None when it has none."""
        out = self._git(["rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}"],
                        self.mirror_path(repo), check=False)
        return out.strip() or None

    def _fetch(self, mirror: Path, clone_url: str, token: str | None, refspecs: list[str]) -> None:
        for attempt in git_retrying(self.retry_budget_s):
            with attempt:
                self._git(["fetch", "--quiet", "--prune", "origin", *refspecs], mirror, env=auth_env(clone_url, token))

    def _remove(self, mirror: Path, path: Path) -> None:
        self._git(["worktree", "remove", "--force", str(path)], mirror, check=False)
        if path.exists():
            shutil.rmtree(path)
        self._git(["worktree", "prune"], mirror, check=False)

    def _git(self, args: list[str], cwd: Path, *, env: dict[str, str] | None = None, check: bool = True) -> str:
        return run_git(args, cwd, env=env, check=check, timeout=self.timeout_s)

    @contextlib.contextmanager
    def _locked(self, mirror: Path) -> Iterator[None]:
        """Serialise changes to one mirror across jobs and processes sharing the data directory."""
        mirror.parent.mkdir(parents=True, exist_ok=True)
        with open(mirror.parent / f"{mirror.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _split(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not (_SAFE_PART.match(owner) and _SAFE_PART.match(name)) or {owner, name} & {".", ".."}:
        raise ValueError(f"{repo!r} is not an owner/name repository")
    return owner, name
