"""The instances' repositories, offline: `--repos DIR` holds each as `DIR/<owner>__<name>` (a git
repository or a bare mirror) or `DIR/<owner>__<name>.bundle`; `DIR/<name>` and `DIR/<name>.bundle`
are accepted too (how tests/data/realrepos/ names its bundles).

Nothing is ever written into DIR: each repository is mirrored once into a cache (a bare clone), and each
instance gets its own clone of the mirror that shares its objects, so instances of one repository can
run side by side.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from pathlib import Path

from bot.runs.swebench.instances import Instance
from bot.workspace import GitError, run_git


class RepoError(Exception):
    """An instance's repository or commit is not there."""


class Repos:
    def __init__(self, repos_dir: Path, cache_dir: Path) -> None:
        self.repos_dir = Path(repos_dir)
        self.cache_dir = Path(cache_dir)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def source(self, instance: Instance) -> Path:
        """Where `instance`'s repository is under DIR; RepoError naming the instance and the places tried."""
        name = instance.repo.split("/", 1)[1]
        candidates = [self.repos_dir / instance.slug, self.repos_dir / f"{instance.slug}.bundle",
                      self.repos_dir / name, self.repos_dir / f"{name}.bundle"]
        for path in candidates:
            if path.is_file() and path.suffix == ".bundle":
                return path
            if path.is_dir() and ((path / ".git").exists() or (path / "HEAD").is_file()):
                return path
        raise RepoError(f"instance {instance.instance_id}: no repository {instance.repo} in {self.repos_dir} "
                        f"(looked for {', '.join(p.name for p in candidates)})")

    def mirror(self, instance: Instance) -> Path:
        """The bare mirror of the instance's repository (made on first use) holding its base commit."""
        source = self.source(instance)
        mirror = self.cache_dir / f"{instance.slug}.git"
        if not (mirror / "HEAD").is_file():
            if mirror.exists():
                shutil.rmtree(mirror)  # a clone interrupted half-way
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = mirror.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            try:
                run_git(["clone", "--quiet", "--mirror", str(source.resolve()), str(partial)], self.cache_dir)
            except GitError as exc:
                raise RepoError(f"instance {instance.instance_id}: cannot read {source}: {exc}") from exc
            partial.rename(mirror)
        if not has_commit(mirror, instance.base_commit):
            raise RepoError(f"instance {instance.instance_id}: commit {instance.base_commit} is not in {source}")
        return mirror

    async def clone(self, instance: Instance, dest: Path) -> Path:
        """A fresh clone at `dest`, checked out at the base commit, sharing the mirror's objects."""
        async with self._locks[instance.slug]:  # one mirror is made once, even with parallel instances
            mirror = await asyncio.to_thread(self.mirror, instance)
        return await asyncio.to_thread(_clone, mirror, instance.base_commit, dest)


def has_commit(repo: Path, commit: str) -> bool:
    return bool(run_git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], repo, check=False).strip())


def _clone(mirror: Path, commit: str, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_git(["clone", "--quiet", "--shared", "--no-checkout", str(mirror), str(dest)], dest.parent)
    run_git(["checkout", "--quiet", "--force", "--detach", commit], dest)
    return dest


def reset_to(repo: Path, commit: str) -> None:
    """The clone's files exactly as at `commit`, untracked files removed."""
    run_git(["checkout", "--quiet", "--force", "--detach", commit], repo)
    run_git(["clean", "-qfdx"], repo)
