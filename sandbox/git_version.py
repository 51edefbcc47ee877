"""A project's version from its git tags, computed on the host (the sandbox's copy has no `.git`).

It follows setuptools-scm's default scheme: on a tag, the tag's version; N commits after it, the next
version's development release (`4.16.0` + 5 commits -> `4.16.1.dev5`). Tags that are not versions (`2.1.x`,
`nightly`) are passed over.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sandbox.python_env import FALLBACK_VERSION

VERSION_TAG = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|rc)(\d+))?$", re.IGNORECASE)


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess:
    # safe.directory: the checkout may belong to another user than the bot
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo_dir), *args],
                          capture_output=True, text=True, timeout=30)


def version_from_describe(tag: str, distance: int) -> str:
    """The version of a commit `distance` commits after the version tag `tag`."""
    match = VERSION_TAG.match(tag)
    if match is None:
        raise ValueError(f"{tag!r} is not a version tag")
    release, pre, number = match.group(1), match.group(2), match.group(3)
    pre_part = f"{pre.lower()}{number}" if pre else ""
    if distance == 0:
        return release + pre_part
    if pre:  # 2.0rc1 + 3 -> 2.0rc2.dev3
        return f"{release}{pre.lower()}{int(number) + 1}.dev{distance}"
    parts = release.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return f"{'.'.join(parts)}.dev{distance}"


def git_version(repo_dir: Path) -> str | None:
    """The version of `repo_dir`'s HEAD from the nearest version tag, FALLBACK_VERSION when no version tag
    reaches HEAD, None when `repo_dir` is not the top of a git checkout."""
    repo_dir = Path(repo_dir)
    if not (repo_dir / ".git").exists():  # never the tags of an enclosing repository
        return None
    try:
        listed = _git(repo_dir, "tag", "--merged", "HEAD")
        if listed.returncode != 0:
            return None
        tags = [t for t in listed.stdout.split() if VERSION_TAG.match(t)]
        if not tags:
            return FALLBACK_VERSION
        matches = [arg for tag in tags for arg in ("--match", tag)]
        described = _git(repo_dir, "describe", "--tags", "--long", *matches, "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"^(.*)-(\d+)-g[0-9a-f]+$", described.stdout.strip())
    if described.returncode != 0 or found is None:
        return FALLBACK_VERSION
    return version_from_describe(found.group(1), int(found.group(2)))
