"""Copying workspaces in and out, and bounded output."""

from __future__ import annotations

import io
import os
import tarfile

from sandbox.base import OutputBuffer, trim
from sandbox.workspace import copy_tree, extract_tar, make_tar

from .conftest import write_tree


def _tree(tmp_path):
    root = write_tree(tmp_path / "src", {"a.py": "a\n", "pkg/b.py": "b\n", ".git/HEAD": "ref\n", "sub/.git": "gitdir: /x\n"})
    os.chmod(root / "a.py", 0o4755)
    os.symlink("a.py", root / "inner")
    os.symlink("../pkg/b.py", root / "pkg" / "up-and-in")
    os.symlink("/etc/passwd", root / "absolute")
    os.symlink("../../outside", root / "pkg" / "escape")
    os.mkfifo(root / "fifo")
    return root


def test_tar_keeps_files_and_inner_links_only(tmp_path):
    data = make_tar(_tree(tmp_path), uid=1000, links={"node_modules": "/opt/aura-env/node_modules"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"a.py", "inner", "pkg", "pkg/b.py", "pkg/up-and-in", "sub", "node_modules"}
    assert all(m.uid == 1000 for m in members.values())
    assert members["a.py"].mode == 0o755  # no set-uid bit
    assert members["node_modules"].linkname == "/opt/aura-env/node_modules"


def test_copy_tree_matches_the_tar(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    copy_tree(_tree(tmp_path), dest)
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*")}
    assert names == {"a.py", "inner", "pkg", "pkg/b.py", "pkg/up-and-in", "sub"}
    assert (dest / "inner").is_symlink() and (dest / "pkg/up-and-in").read_text() == "b\n"


def test_extract_refuses_what_is_not_the_workspace(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name, data=b"", **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("workspace", type=tarfile.DIRTYPE)
        add("workspace/ok.txt", data=b"ok")
        add("workspace/../../evil.txt", data=b"evil")
        add("workspace/abs", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("workspace/esc", type=tarfile.SYMTYPE, linkname="../../etc")
        add("workspace/hard", type=tarfile.LNKTYPE, linkname="workspace/ok.txt")
        add("workspace/dev", type=tarfile.CHRTYPE)
        add("workspace/.git/config", data=b"x")
        add("elsewhere.txt", data=b"x")
    buffer.seek(0)
    dest = tmp_path / "out"
    dest.mkdir()
    extract_tar(buffer, dest, strip_top="workspace")
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")} == {"out", "out/ok.txt"}


def test_output_buffer_keeps_head_and_tail():
    buffer = OutputBuffer(100)
    for i in range(1000):
        buffer.feed(f"line {i}\n".encode())
    text = buffer.text()
    assert buffer.truncated and text.startswith("line 0\n") and text.endswith("line 999\n")
    assert "bytes cut by aura-sicd" in text and len(text) < 160
    small = OutputBuffer(100)
    small.feed(b"short")
    assert small.text() == "short" and not small.truncated
    assert trim("x" * 50, 100) == "x" * 50 and "cut" in trim("x" * 500, 100)
