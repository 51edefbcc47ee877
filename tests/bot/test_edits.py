"""bot.edits: exact and whitespace-tolerant edits, precise errors, atomicity, path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.edits import AppliedChange, EditError, UnsafePathError, apply_changes, normalize_rel_path, safe_path
from bot.records import Change, ChangeType, Edit


def update(path: str, *pairs: tuple[str, str]) -> Change:
    return Change(file_path=path, change_type=ChangeType.UPDATE, edits=[Edit(search=s, replace=r) for s, r in pairs])


def create(path: str, content: str) -> Change:
    return Change(file_path=path, change_type=ChangeType.CREATE, new_content=content)


def delete(path: str) -> Change:
    return Change(file_path=path, change_type=ChangeType.DELETE)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "calc.py").write_text(
        "def add(a, b):\n"
        "    return a + b\n"
        "\n"
        "\n"
        "class Calculator:\n"
        "    def total(self, items):\n"
        "        result = 0\n"
        "        for item in items:\n"
        "            result += item\n"
        "        return result\n"
    )
    return root


# --- safe_path -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    ["", "   ", "/etc/passwd", "../outside.py", "pkg/../../outside.py", ".git/config", "pkg/.git/hooks/x",
     "C:/x.py", "pkg\\calc.py", ".", "./"],
)
def test_safe_path_rejects(repo: Path, rel: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_path(repo, rel)


def test_safe_path_accepts_and_normalises(repo: Path) -> None:
    assert safe_path(repo, "./pkg//calc.py") == repo.resolve() / "pkg" / "calc.py"
    assert safe_path(repo, "new/dir/file.py") == repo.resolve() / "new" / "dir" / "file.py"


def test_safe_path_rejects_symlinked_file_leaving_root(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (repo / "link.txt").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_path(repo, "link.txt")


def test_safe_path_rejects_symlinked_directory_leaving_root(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "vendor").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        safe_path(repo, "vendor/new_file.py")  # does not exist yet: the directory link is enough
    with pytest.raises(UnsafePathError):
        safe_path(repo, "vendor/deeper/x.py")


def test_safe_path_rejects_dangling_link_pointing_out(repo: Path, tmp_path: Path) -> None:
    (repo / "dangling.py").symlink_to(tmp_path / "not-there.py")
    with pytest.raises(UnsafePathError):
        safe_path(repo, "dangling.py")


def test_safe_path_rejects_link_into_git_dir(repo: Path) -> None:
    (repo / ".git").mkdir()
    (repo / "hooks").symlink_to(repo / ".git", target_is_directory=True)
    with pytest.raises(UnsafePathError, match=".git"):
        safe_path(repo, "hooks/pre-commit")


def test_safe_path_allows_symlink_inside_root(repo: Path) -> None:
    (repo / "alias.py").symlink_to(repo / "pkg" / "calc.py")
    assert safe_path(repo, "alias.py") == repo.resolve() / "alias.py"


def test_apply_changes_refuses_to_write_through_escaping_link(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "vendor").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        apply_changes(repo, [create("vendor/evil.py", "x = 1\n")])
    assert list(outside.iterdir()) == []


# --- exact and tolerant edits --------------------------------------------------------------------


def test_exact_edit(repo: Path) -> None:
    result = apply_changes(repo, [update("pkg/calc.py", ("    return a + b\n", "    return a + b + 0\n"))])
    assert result == [AppliedChange(file_path="pkg/calc.py", change_type=ChangeType.UPDATE, lines_added=1,
                                    lines_removed=1)]
    assert "    return a + b + 0\n" in (repo / "pkg/calc.py").read_text()


def test_exact_edit_mirrors_trailing_newline_of_search(repo: Path) -> None:
    apply_changes(repo, [update("pkg/calc.py", ("def add(a, b):\n", "def add(a, b):  # sum"))])
    text = (repo / "pkg/calc.py").read_text()
    assert text.startswith("def add(a, b):  # sum\n    return a + b\n")


def test_several_edits_apply_in_order(repo: Path) -> None:
    apply_changes(
        repo,
        [update("pkg/calc.py", ("result = 0", "result = start"), ("result = start\n", "result = start  # seed\n"))],
    )
    assert "        result = start  # seed\n" in (repo / "pkg/calc.py").read_text()


def test_several_changes_to_one_file_apply_in_order(repo: Path) -> None:
    applied = apply_changes(
        repo,
        [
            create("pkg/new.py", "A = 1\n"),
            update("pkg/new.py", ("A = 1", "A = 2")),
            update("pkg/new.py", ("A = 2\n", "A = 2\nB = 3\n")),
        ],
    )
    assert (repo / "pkg/new.py").read_text() == "A = 2\nB = 3\n"
    assert [a.change_type for a in applied] == [ChangeType.CREATE, ChangeType.UPDATE, ChangeType.UPDATE]
    assert applied[2].lines_added == 1 and applied[2].lines_removed == 0


def test_whitespace_tolerant_match_reindents_replacement(repo: Path) -> None:
    # The model lost the indentation and added a blank line; the file's indentation is kept.
    search = "for item in items:\n\n    result += item\n"
    replace = "for item in items:\n    if item is not None:\n        result += item\n"
    apply_changes(repo, [update("pkg/calc.py", (search, replace))])
    assert (repo / "pkg/calc.py").read_text().endswith(
        "        result = 0\n"
        "        for item in items:\n"
        "            if item is not None:\n"
        "                result += item\n"
        "        return result\n"
    )


def test_whitespace_tolerant_match_over_indented_model(repo: Path) -> None:
    search = "            def total(self, items):\n                result = 0\n"
    replace = "            def total(self, items, start=0):\n                result = start\n"
    apply_changes(repo, [update("pkg/calc.py", (search, replace))])
    text = (repo / "pkg/calc.py").read_text()
    assert "    def total(self, items, start=0):\n        result = start\n        for item" in text


def test_whitespace_tolerant_ignores_trailing_spaces_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1   \n\n\ny = 2\n")
    apply_changes(tmp_path, [update("a.py", ("x = 1\ny = 2", "x = 1\ny = 3"))])
    assert (tmp_path / "a.py").read_text() == "x = 1\ny = 3\n"


def test_replacement_can_delete_block(repo: Path) -> None:
    applied = apply_changes(repo, [update("pkg/calc.py", ("   def add(a, b):\n     return a + b", ""))])
    assert not (repo / "pkg/calc.py").read_text().startswith("def add")
    assert applied[0].lines_removed == 2


# --- newline styles ------------------------------------------------------------------------------


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    (tmp_path / "w.py").write_bytes(b"def f():\r\n    return 1\r\n")
    apply_changes(tmp_path, [update("w.py", ("    return 1\n", "    value = 2\n    return value\n"))])
    assert (tmp_path / "w.py").read_bytes() == b"def f():\r\n    value = 2\r\n    return value\r\n"


def test_crlf_search_matches_lf_file(tmp_path: Path) -> None:
    (tmp_path / "u.py").write_bytes(b"a = 1\nb = 2\n")
    apply_changes(tmp_path, [update("u.py", ("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n"))])
    assert (tmp_path / "u.py").read_bytes() == b"a = 1\nb = 3\n"


def test_missing_trailing_newline_is_kept_missing(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_bytes(b"one\ntwo")
    apply_changes(tmp_path, [update("n.txt", ("two", "three\n"))])
    assert (tmp_path / "n.txt").read_bytes() == b"one\nthree"


def test_trailing_newline_is_kept_on_tolerant_match(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_bytes(b"  one\n  two\n")
    apply_changes(tmp_path, [update("n.txt", ("two", "2"))])  # exact (substring) match
    apply_changes(tmp_path, [update("n.txt", ("one\n2", "uno\n2"))])  # tolerant
    assert (tmp_path / "n.txt").read_bytes() == b"  uno\n  2\n"


# --- errors --------------------------------------------------------------------------------------


def test_missing_search_text_names_file_quotes_search_and_shows_closest_lines(repo: Path) -> None:
    with pytest.raises(EditError) as info:
        search = "        for entry in items:\n            result += entry\n"
        apply_changes(repo, [update("pkg/calc.py", (search, "x"))])
    message = str(info.value)
    assert "`pkg/calc.py`" in message
    assert "not found" in message
    assert "    for entry in items:" in message  # quoted, trimmed
    assert " 8 |         for item in items:" in message
    assert " 9 |             result += item" in message
    assert info.value.file_path == "pkg/calc.py"


def test_ambiguous_exact_match_names_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text("x = 0\nprint(x)\ny = 1\nprint(x)\n")
    with pytest.raises(EditError, match=r"occurs 2 times \(starting at lines 2, 4\)"):
        apply_changes(tmp_path, [update("d.py", ("print(x)\n", "print(x, y)\n"))])


def test_ambiguous_tolerant_match_names_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text("if a:\n    go()\nif b:\n  go()\n")
    with pytest.raises(EditError, match=r"matches 2 places \(starting at lines 2, 4\)"):
        apply_changes(tmp_path, [update("d.py", ("        go()", "stop()"))])


def test_edit_number_is_named_when_several(repo: Path) -> None:
    with pytest.raises(EditError, match=r"Edit 2 of 2 for `pkg/calc.py`"):
        apply_changes(repo, [update("pkg/calc.py", ("result = 0", "result = 1"), ("nowhere()", "x"))])


def test_empty_search_text(repo: Path) -> None:
    with pytest.raises(EditError, match="empty search text"):
        apply_changes(repo, [update("pkg/calc.py", ("  \n", "x = 1\n"))])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda: update("pkg/none.py", ("a", "b")), "Cannot update `pkg/none.py`: the file does not exist"),
        (lambda: create("pkg/calc.py", "x"), "Cannot create `pkg/calc.py`: the file already exists"),
        (lambda: delete("pkg/none.py"), "Cannot delete `pkg/none.py`: the file does not exist"),
        (lambda: update("pkg", ("a", "b")), "`pkg` is a directory"),
        (lambda: create("pkg/calc.py/inner.py", "x"), "is a file, not a directory"),
    ],
)
def test_wrong_change_type_errors(repo: Path, change, message: str) -> None:
    with pytest.raises(EditError, match=message.replace("(", r"\(")):
        apply_changes(repo, [change()])


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(EditError, match="not UTF-8"):
        apply_changes(tmp_path, [update("blob.bin", ("binary", "text"))])


# --- atomicity -----------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_nothing_is_written_when_the_second_change_fails(repo: Path) -> None:
    (repo / "README.md").write_text("# demo\n")
    before = snapshot(repo)
    with pytest.raises(EditError):
        apply_changes(
            repo,
            [
                update("pkg/calc.py", ("return a + b", "return b + a")),
                create("pkg/extra.py", "EXTRA = True\n"),
                delete("README.md"),
                update("pkg/calc.py", ("this text is not there", "x")),
            ],
        )
    assert snapshot(repo) == before
    assert not (repo / "pkg" / "extra.py").exists()


def test_create_delete_and_nested_directories(repo: Path) -> None:
    applied = apply_changes(repo, [create("docs/guide/intro.md", "# Intro\n\nHello\n"), delete("pkg/calc.py")])
    assert (repo / "docs/guide/intro.md").read_text() == "# Intro\n\nHello\n"
    assert not (repo / "pkg/calc.py").exists()
    assert applied[0].lines_added == 3 and applied[1].lines_removed == 10


def test_delete_then_create_same_path(repo: Path) -> None:
    apply_changes(repo, [delete("pkg/calc.py"), create("pkg/calc.py", "VALUE = 1\n")])
    assert (repo / "pkg/calc.py").read_text() == "VALUE = 1\n"


def test_file_mode_is_kept(repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    apply_changes(repo, [update("run.sh", ("echo hi", "echo hello"))])
    assert os.access(script, os.X_OK)
    assert script.read_text() == "#!/bin/sh\necho hello\n"


def test_no_write_or_delete_goes_through_a_link_inside_the_repository(tmp_path: Path) -> None:
    from bot.edits import apply_changes

    root = tmp_path / "repo"
    (root / ".github").mkdir(parents=True)
    (root / ".github" / "aura-sicd.yml").write_text("max_iterations: 2\n")
    (root / "docs").mkdir()
    (root / "docs" / "gh").symlink_to("../.github", target_is_directory=True)
    (root / "README.md").symlink_to("docs/readme.md")
    (root / "docs" / "readme.md").write_text("hi\n")
    for change in (Change(file_path="docs/gh/aura-sicd.yml", change_type=ChangeType.DELETE),
                   Change(file_path="docs/gh/new.yml", change_type=ChangeType.CREATE, new_content="x\n"),
                   Change(file_path="README.md", change_type=ChangeType.UPDATE, edits=[Edit(search="hi", replace="ho")])):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            apply_changes(root, [change])
    assert (root / ".github" / "aura-sicd.yml").read_text() == "max_iterations: 2\n"
    assert not (root / ".github" / "new.yml").exists() and (root / "docs" / "readme.md").read_text() == "hi\n"


@pytest.mark.parametrize("rel", ["a\nb.py", "a\rb.py", "x/\u2028y.py", "tab\there.py", "nul\x00.py", "bell\x07.py"])
def test_paths_with_control_characters_or_line_breaks_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UnsafePathError, match="control character"):
        normalize_rel_path(rel)


def test_a_file_and_a_file_under_it_in_one_proposal_is_a_clear_refusal(tmp_path: Path) -> None:
    from bot.cycle.policy import Policy
    from bot.edits import EditError, apply_changes
    from bot.records import Proposal

    changes = [Change(file_path="foo", change_type=ChangeType.CREATE, new_content="a\n"),
               Change(file_path="foo/bar", change_type=ChangeType.CREATE, new_content="b\n")]
    with pytest.raises(EditError, match="`foo` and `foo/bar` cannot both be files"):
        apply_changes(tmp_path, changes)
    assert not (tmp_path / "foo").exists()
    decision = Policy().evaluate(Proposal(summary="s", changes=changes), tmp_path)
    assert not decision.allowed and "`foo` and `foo/bar` cannot both be files" in decision.violations[0]
