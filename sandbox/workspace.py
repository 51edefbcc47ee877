"""Moving a workspace into and out of a sandbox without carrying anything else along.

Symlinks are never followed: one that stays inside the tree is kept as a link, one that points outside
(for example at a host file) is dropped. `.git` is never copied (a worktree's `.git` file points outside).
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED_NAMES = frozenset({".git"})


@dataclass(frozen=True)
class Entry:
    rel: str  # posix path relative to the root
    path: Path
    kind: str  # "dir" | "file" | "link"
    mode: int
    link_target: str = ""


def _link_stays_inside(rel: str, target: str) -> bool:
    if posixpath.isabs(target):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved != ".." and not resolved.startswith("../")


def iter_tree(root: Path, skip_top: frozenset[str] = frozenset()) -> Iterator[Entry]:
    """Directories before their contents; sockets, fifos and devices are left out."""

    def walk(directory: Path, prefix: str) -> Iterator[Entry]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name in SKIPPED_NAMES or (not prefix and entry.name in skip_top):
                continue
            rel = f"{prefix}{entry.name}"
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(entry.path)
                if _link_stays_inside(rel, target):
                    yield Entry(rel, Path(entry.path), "link", 0o777, target)
            elif stat.S_ISDIR(st.st_mode):
                yield Entry(rel, Path(entry.path), "dir", st.st_mode & 0o777)
                yield from walk(Path(entry.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                yield Entry(rel, Path(entry.path), "file", st.st_mode & 0o777)

    yield from walk(root, "")


def _normal_mode(kind: str, mode: int) -> int:
    # the sandbox user owns everything; keep the executable bit, drop set-id and sticky bits
    if kind == "dir":
        return 0o755
    return 0o755 if mode & 0o111 else 0o644


def make_tar(root: Path, uid: int, links: dict[str, str] | None = None) -> bytes:
    """An uncompressed tar of `root` owned by `uid`, plus extra top-level symlinks `links` (name → target)."""
    links = links or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in iter_tree(root, skip_top=frozenset(links)):
            info = tarfile.TarInfo(entry.rel)
            info.uid = info.gid = uid
            info.mode = _normal_mode(entry.kind, entry.mode)
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link_target
                tar.addfile(info)
            else:
                info.size = entry.path.stat().st_size
                info.mtime = int(entry.path.stat().st_mtime)
                with open(entry.path, "rb") as fh:
                    tar.addfile(info, fh)
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            info.uid = info.gid = uid
            tar.addfile(info)
    return buffer.getvalue()


def copy_tree(source: Path, dest: Path, *, owner: int | None = None, links: dict[str, str] | None = None) -> None:
    """Copy `source` into the existing empty directory `dest` with the same rules as make_tar."""
    links = links or {}
    for entry in iter_tree(source, skip_top=frozenset(links)):
        target = dest / entry.rel
        if entry.kind == "dir":
            target.mkdir(mode=0o755)
        elif entry.kind == "link":
            os.symlink(entry.link_target, target)
        else:
            shutil.copyfile(entry.path, target, follow_symlinks=False)
            os.chmod(target, _normal_mode("file", entry.mode))
        if owner is not None:
            os.lchown(target, owner, owner)
    for name, link_target in links.items():
        os.symlink(link_target, dest / name)
        if owner is not None:
            os.lchown(dest / name, owner, owner)


def clear_dir(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def extract_tar(data: io.BufferedIOBase | io.BytesIO, dest: Path, strip_top: str | None = None) -> None:
    """Extract an untrusted tar: regular files, directories and inner symlinks only (tarfile's data filter)."""

    def keep(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if strip_top is not None:
            if member.name == strip_top:
                return None
            if not member.name.startswith(strip_top + "/"):
                return None
            member = member.replace(name=member.name[len(strip_top) + 1 :], deep=False)
        if not (member.isfile() or member.isdir() or member.issym()):
            return None
        if member.issym() and not _link_stays_inside(member.name, member.linkname):
            return None
        if member.name.split("/")[0] in SKIPPED_NAMES:
            return None
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError:  # a path outside the destination and the like: leave it behind
            return None

    with tarfile.open(fileobj=data, mode="r|*") as tar:
        tar.extractall(dest, filter=keep)
