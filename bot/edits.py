"""Apply a proposal's changes to a working tree: all or nothing, with errors a model can act on.

This is the one place edits are applied, whichever edit format (bot/edit_formats/) the generator wrote
them in: every format's parser returns the same `Proposal`.

An update is a list of search/replace edits. Each search text must match exactly once; when it does not
match exactly, a whitespace-tolerant line match is tried (leading/trailing whitespace and blank lines
ignored), re-indenting the replacement to the file's indentation. Every new file content is computed
in memory first; nothing is written unless every change applies.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from bot.records import Change, ChangeType, Edit

SEARCH_PREVIEW_LINES = 15
CLOSEST_CONTEXT_LINES = 2


class EditError(Exception):
    """A change that cannot be applied. `str()` is the precise message that goes into the next prompt."""

    def __init__(self, message: str, *, file_path: str | None = None):
        self.file_path = file_path
        super().__init__(message)


class UnsafePathError(EditError):
    """A path that would write outside the repository (or into its .git directory)."""


class AppliedChange(BaseModel):
    file_path: str
    change_type: ChangeType
    lines_added: int
    lines_removed: int


# --- paths ---------------------------------------------------------------------------------------


def normalize_rel_path(rel: str) -> str:
    """The repository-relative form of `rel` ("./a//b.py" -> "a/b.py"), or UnsafePathError."""
    if not isinstance(rel, str) or not rel.strip():
        raise UnsafePathError("A change has an empty file path; give the path relative to the repository root.")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in rel):
        raise UnsafePathError(
            f"The path {rel!r} contains a control character or a line break; name files with printable characters only.",
            file_path=rel,
        )
    if "\\" in rel:
        raise UnsafePathError(
            f"The path `{rel}` contains a backslash; use forward slashes, relative to the repository root.",
            file_path=rel,
        )
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        raise UnsafePathError(
            f"The path `{rel}` is absolute; give it relative to the repository root.", file_path=rel
        )
    parts = [p for p in PurePosixPath(rel).parts if p != "."]
    if ".." in parts:
        raise UnsafePathError(f"The path `{rel}` contains `..`; paths must stay inside the repository.", file_path=rel)
    if not parts:
        raise UnsafePathError(f"The path `{rel}` does not name a file.", file_path=rel)
    if ".git" in parts:
        raise UnsafePathError(f"The path `{rel}` points into the .git directory, which is off limits.", file_path=rel)
    return "/".join(parts)


def safe_path(root: Path, rel: str) -> Path:
    """`root / rel`, after checking the path cannot reach outside `root`.

    Rejects empty, absolute and `..` paths, paths into `.git`, and any path whose resolution (symlinks
    included, in the file itself or in any directory on the way) leaves the root.
    """
    norm = normalize_rel_path(rel)
    real_root = root.resolve()
    target = real_root / norm
    # resolve() follows every symlink that exists on the way, a dangling final link included.
    resolved = target.resolve()
    if not resolved.is_relative_to(real_root):
        raise UnsafePathError(
            f"The path `{rel}` goes through a symbolic link that leads outside the repository; "
            "change the files inside it instead.",
            file_path=rel,
        )
    if resolved != real_root and ".git" in resolved.relative_to(real_root).parts:
        raise UnsafePathError(f"The path `{rel}` leads into the .git directory, which is off limits.", file_path=rel)
    return target


def link_on_the_way(root: Path, norm: str) -> str | None:
    """The first repository-relative path on the way to `norm` (the file itself included) that is a
    symbolic link, or None."""
    current, parts = Path(root), norm.split("/")
    for index, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            return "/".join(parts[: index + 1])
        if not current.exists():
            return None
    return None


def writable_path(root: Path, rel: str) -> Path:
    """`safe_path`, and no symbolic link anywhere on the way: a write or delete through a link would land
    on another path than the one the policy checked."""
    target = safe_path(root, rel)
    norm = normalize_rel_path(rel)
    if (link := link_on_the_way(root, norm)) is not None:
        where = "is a symbolic link" if link == norm else f"goes through the symbolic link `{link}`"
        raise UnsafePathError(
            f"The path `{norm}` {where}; symbolic links are never written through. Change the file it points "
            "to by its own path.",
            file_path=rel,
        )
    return target


def nested_files(paths: list[str]) -> str | None:
    """A refusal when one path of the proposal is a directory of another, e.g. `foo` and `foo/bar`."""
    kept = set(paths)
    for rel in sorted(kept):
        for parent in PurePosixPath(rel).parents:
            if str(parent) in kept:
                return (f"`{parent}` and `{rel}` cannot both be files: `{parent}` would have to be a directory. "
                        "Keep only one of them.")
    return None


# --- text helpers ----------------------------------------------------------------------------------


def whole_file_update(path: str, current: str, new_content: str, rationale: str = "") -> Change | None:
    """A rewrite of an existing file as the applier's operation: one edit whose search text is the file's
    whole `current` text. None for a blank file, which has no text to search for (the caller deletes and
    creates it again, or asks for that)."""
    if not current.strip():
        return None
    return Change(file_path=path, change_type=ChangeType.UPDATE, edits=[Edit(search=current, replace=new_content)],
                  rationale=rationale)


def _to_lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _count_lines(text: str) -> int:
    return len(text.splitlines())


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _line_delta(old: str, new: str) -> tuple[int, int]:
    """(added, removed) lines between two texts."""
    a, b = old.splitlines(), new.splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def _quote(text: str, limit: int = SEARCH_PREVIEW_LINES) -> str:
    lines = text.strip("\n").splitlines()
    shown = [f"    {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"    ... ({len(lines) - limit} more lines)")
    return "\n".join(shown)


def _numbered(lines: list[str], start: int, end: int) -> str:
    width = len(str(end))
    return "\n".join(f"  {n + 1:>{width}} | {lines[n]}" for n in range(start, end))


def _reindent(replace_lines: list[str], model_indent: str, file_indent: str) -> list[str]:
    """Shift the replacement from the model's indentation of the block to the file's."""
    if model_indent == file_indent:
        return replace_lines
    out = []
    for line in replace_lines:
        if not line.strip():
            out.append(line)
        elif file_indent.startswith(model_indent):  # the model under-indented
            out.append(file_indent[len(model_indent) :] + line)
        elif line.startswith(model_indent):  # over-indented, or tabs against spaces
            out.append(file_indent + line[len(model_indent) :])
        else:  # a line less indented than the block's first line: keep its relative depth if possible
            extra = len(model_indent) - len(file_indent)
            lead = _indent_of(line)
            out.append(line[min(extra, len(lead)) :] if extra > 0 else line)
    return out


# --- one edit ------------------------------------------------------------------------------------


@dataclass
class _EditTarget:
    path: str
    number: int  # 1-based edit index within the change
    total: int

    @property
    def label(self) -> str:
        which = f"Edit {self.number} of {self.total}" if self.total > 1 else "The edit"
        return f"{which} for `{self.path}`"


def _exact_matches(content: str, search: str) -> list[int]:
    found, start = [], 0
    while (idx := content.find(search, start)) != -1:
        found.append(idx)
        start = idx + 1
    return found


def _tolerant_matches(lines: list[str], search_lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line indices where the search's non-blank lines match, blank lines skipped."""
    wanted = [s.strip() for s in search_lines if s.strip()]
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    stripped = [lines[i].strip() for i in nonblank]
    n = len(wanted)
    matches = []
    for k in range(len(stripped) - n + 1):
        if stripped[k] == wanted[0] and stripped[k : k + n] == wanted:
            matches.append((nonblank[k], nonblank[k + n - 1]))
    return matches


def _closest_lines(lines: list[str], search: str) -> str:
    """The stretch of the file most like the search text, numbered, with a little context."""
    wanted = [s.strip() for s in search.splitlines() if s.strip()]
    if not lines or not wanted:
        return "  (the file is empty)" if not lines else ""
    nonblank = [i for i, line in enumerate(lines) if line.strip()] or [0]
    n = min(len(wanted), len(nonblank))
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(wanted))
    best, best_k = -1.0, 0
    for k in range(len(nonblank) - n + 1):
        matcher.set_seq1("\n".join(lines[i].strip() for i in nonblank[k : k + n]))
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_k = ratio, k
    first, last = nonblank[best_k], nonblank[best_k + n - 1]
    start = max(0, first - CLOSEST_CONTEXT_LINES)
    end = min(len(lines), last + 1 + CLOSEST_CONTEXT_LINES)
    return _numbered(lines, start, end)


def apply_edit(content: str, search: str, replace: str, target: _EditTarget) -> str:
    """Apply one search/replace edit to LF-normalised `content`; EditError when it does not match once."""
    search, replace = _to_lf(search), _to_lf(replace)
    if not search.strip():
        raise EditError(
            f"{target.label} has an empty search text. To add code, search for the lines next to where it "
            "goes and repeat them in the replacement together with the new code.",
            file_path=target.path,
        )

    exact = _exact_matches(content, search)
    if len(exact) == 1:
        # Mirror the search's final newline onto the replacement, so lines are neither joined nor doubled.
        if replace:
            if search.endswith("\n") and not replace.endswith("\n"):
                replace += "\n"
            elif not search.endswith("\n") and replace.endswith("\n"):
                replace = replace[:-1]
        idx = exact[0]
        return content[:idx] + replace + content[idx + len(search) :]
    if len(exact) > 1:
        line_numbers = ", ".join(str(content.count("\n", 0, i) + 1) for i in exact)
        raise EditError(
            f"{target.label} is ambiguous: its search text occurs {len(exact)} times (starting at lines "
            f"{line_numbers}). Include more surrounding lines so the search text matches exactly once.\n"
            f"Search text:\n{_quote(search)}",
            file_path=target.path,
        )

    trailing_newline = content.endswith("\n")
    lines = content.split("\n")
    if trailing_newline:
        lines.pop()
    search_lines = search.split("\n")
    matches = _tolerant_matches(lines, search_lines)
    if len(matches) > 1:
        line_numbers = ", ".join(str(first + 1) for first, _ in matches)
        raise EditError(
            f"{target.label} is ambiguous: ignoring whitespace, its search text matches {len(matches)} places "
            f"(starting at lines {line_numbers}). Include more surrounding lines so it matches exactly once.\n"
            f"Search text:\n{_quote(search)}",
            file_path=target.path,
        )
    if not matches:
        raise EditError(
            f"{target.label} did not apply: its search text was not found, not even ignoring whitespace. "
            "The search text must be copied exactly from the current file.\n"
            f"Search text:\n{_quote(search)}\n"
            f"Closest lines in `{target.path}` (line numbers are not part of the file):\n"
            f"{_closest_lines(lines, search)}",
            file_path=target.path,
        )

    first, last = matches[0]
    model_first = next(s for s in search_lines if s.strip())
    replace_body = replace[:-1] if replace.endswith("\n") else replace
    replace_lines = replace_body.split("\n") if replace_body.strip() else []
    replace_lines = _reindent(replace_lines, _indent_of(model_first), _indent_of(lines[first]))
    new_lines = lines[:first] + replace_lines + lines[last + 1 :]
    return "\n".join(new_lines) + ("\n" if trailing_newline and new_lines else "")


# --- whole changes --------------------------------------------------------------------------------


@dataclass
class _FileState:
    path: Path
    original: bytes | None  # None: absent before the proposal
    text: str | None  # current LF-normalised text, None: absent now
    crlf: bool = False
    trailing_newline: bool = True


def _load(path: Path, rel: str) -> _FileState:
    if path.is_dir():
        raise EditError(f"`{rel}` is a directory, not a file.", file_path=rel)
    if not path.exists():
        return _FileState(path, None, None)
    raw = path.read_bytes()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EditError(f"`{rel}` is not UTF-8 text, so it cannot be edited.", file_path=rel) from None
    return _FileState(
        path,
        raw,
        _to_lf(decoded),
        crlf="\r\n" in decoded,
        trailing_newline=decoded.endswith(("\n", "\r")) or not decoded,
    )


def _encode(state: _FileState) -> bytes:
    text = state.text or ""
    if state.original is not None and text:
        # An existing file keeps its trailing-newline habit.
        if state.trailing_newline and not text.endswith("\n"):
            text += "\n"
        elif not state.trailing_newline and text.endswith("\n"):
            text = text[:-1]
    if state.crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


def _check_parents(root: Path, path: Path, rel: str) -> None:
    for parent in path.relative_to(root.resolve()).parents:
        candidate = root.resolve() / parent
        if candidate.exists() and not candidate.is_dir():
            raise EditError(f"Cannot create `{rel}`: `{parent}` is a file, not a directory.", file_path=rel)


def apply_changes(root: Path, changes: list[Change]) -> list[AppliedChange]:
    """Apply every change, or none: EditError (nothing written) when any change does not apply."""
    states: dict[str, _FileState] = {}
    applied: list[AppliedChange] = []

    for change in changes:
        path = writable_path(root, change.file_path)
        rel = normalize_rel_path(change.file_path)
        state = states.get(rel) or _load(path, rel)
        states[rel] = state
        before = state.text

        if change.change_type is ChangeType.CREATE:
            if before is not None:
                raise EditError(
                    f"Cannot create `{rel}`: the file already exists. Use an update with search/replace edits.",
                    file_path=rel,
                )
            _check_parents(root, path, rel)
            state.text = _to_lf(change.new_content or "")
            added, removed = _count_lines(state.text), 0
        elif change.change_type is ChangeType.DELETE:
            if before is None:
                raise EditError(f"Cannot delete `{rel}`: the file does not exist.", file_path=rel)
            state.text = None
            added, removed = 0, _count_lines(before)
        else:
            if before is None:
                raise EditError(
                    f"Cannot update `{rel}`: the file does not exist. To add a new file, use a create "
                    "with its full content.",
                    file_path=rel,
                )
            text = before
            added = removed = 0
            for number, edit in enumerate(change.edits, start=1):
                new_text = apply_edit(text, edit.search, edit.replace, _EditTarget(rel, number, len(change.edits)))
                plus, minus = _line_delta(text, new_text)
                added, removed, text = added + plus, removed + minus, new_text
            state.text = text
        applied.append(
            AppliedChange(file_path=rel, change_type=change.change_type, lines_added=added, lines_removed=removed)
        )

    if conflict := nested_files([rel for rel, state in states.items() if state.text is not None]):
        raise EditError(conflict)
    for state in states.values():
        if state.text is None:
            if state.original is not None:
                state.path.unlink()
            continue
        data = _encode(state)
        if data == state.original:
            continue
        state.path.parent.mkdir(parents=True, exist_ok=True)
        state.path.write_bytes(data)
    return applied
