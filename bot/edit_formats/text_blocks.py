"""Plain-text edit formats: code is written as it is, never escaped inside JSON strings.

    Summary: what changed and why, in a sentence or two.

    path/of/the/file.py
    <<<<<<< SEARCH
    lines copied exactly from the file
    =======
    the new lines
    >>>>>>> REPLACE

    <<<<<<< FILE path/of/a/small/file.py
    the complete new content of the file
    >>>>>>> END

    DELETE path/of/a/file.py

"search-replace" takes SEARCH/REPLACE blocks (an empty SEARCH creates a new file) and DELETE lines;
"whole-file" takes FILE blocks for files up to WHOLE_FILE_MAX_LINES lines, SEARCH/REPLACE blocks for
larger ones, and DELETE lines. A FILE block of an existing file becomes a search/replace edit of the
file's whole current text, so bot/edits.py applies it like any other. Markdown fences and prose around
blocks are ignored. A reply that cannot be read raises pydantic's ValidationError, which the LLM layer
quotes in its repair request.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.edit_formats.base import EditFormat
from bot.edits import whole_file_update
from bot.records import Change, ChangeType, Edit, Proposal

FileReader = Callable[[str], str | None]  # a file's current text by path; None if it does not exist

SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
FILE = re.compile(r"^\s*<{5,9} ?FILE:?\s+(\S.*?)\s*$")
END = re.compile(r"^\s*>{5,9} ?END\s*$")
DELETE = re.compile(r"^\s*DELETE:?\s+(\S+)\s*$")
SUMMARY = re.compile(r"^\s*\**summary\**\s*:\s*(.*)$", re.IGNORECASE)
FENCE = re.compile(r"^\s*```")
WHOLE_FILE_MAX_LINES = 200


def reply_error(message: str, line: str = "") -> ValidationError:
    """A ValidationError for a reply this format cannot read, as the repair request quotes it."""
    detail = InitErrorDetails(type=PydanticCustomError("edit_format", message), loc=(), input=line.strip()[:80])
    return ValidationError.from_exception_data("Reply", [detail])


def clean_path(line: str) -> str:
    """A path line as models write it: `calc.py`, **calc.py**, ### calc.py, File: calc.py -> calc.py."""
    path = line.strip().strip("`*#: ").strip()
    return re.sub(r"^(file|path)\s*:\s*", "", path, flags=re.IGNORECASE).strip("`* ")


def _until(lines: list[str], start: int, end: re.Pattern[str], *others: re.Pattern[str]) -> int:
    """The index of the first line from `start` that matches `end` (or any of `others`), or len(lines)."""
    for index in range(start, len(lines)):
        if end.match(lines[index]) or any(p.match(lines[index]) for p in others):
            return index
    return len(lines)


def _text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def parse_blocks(reply: str, *, whole_files: bool, read_file: FileReader | None = None) -> Proposal:
    lines = reply.replace("\r\n", "\n").split("\n")
    summary: list[str] = []
    changes: dict[str, Change] = {}  # one change per file, edits in the order written
    path: str | None = None  # the last path line seen
    index = 0
    while index < len(lines):
        line = lines[index]
        if match := SUMMARY.match(line):
            summary = [match.group(1).strip()]
            while index + 1 < len(lines) and _continues_summary(lines, index + 1):
                index += 1
                summary.append(lines[index].strip())
        elif match := DELETE.match(line):
            name = clean_path(match.group(1))
            changes[name] = Change(file_path=name, change_type=ChangeType.DELETE)
        elif match := FILE.match(line):
            if not whole_files:
                raise reply_error("this format has no FILE blocks: change files with SEARCH/REPLACE blocks", line)
            name = clean_path(match.group(1))
            end = _until(lines, index + 1, END)
            if end == len(lines):
                raise reply_error(f"the FILE block of `{name}` is not closed with >>>>>>> END (was the reply cut off?)", line)
            changes[name] = _whole_file(name, _text(lines[index + 1 : end]), read_file)
            index = end
        elif SEARCH.match(line):
            if not path:
                raise reply_error("a SEARCH block has no file path on the line before it", line)
            divider = _until(lines, index + 1, DIVIDER, REPLACE, SEARCH)
            if divider == len(lines) or not DIVIDER.match(lines[divider]):
                raise reply_error(f"the SEARCH block for `{path}` has no ======= line after its search text", line)
            end = _until(lines, divider + 1, REPLACE, SEARCH)
            if end == len(lines) or not REPLACE.match(lines[end]):
                raise reply_error(f"the block for `{path}` is not closed with >>>>>>> REPLACE (was the reply cut off?)", line)
            _add_edit(changes, path, _text(lines[index + 1 : divider]), _text(lines[divider + 1 : end]), read_file)
            index = end
        elif line.strip() and not FENCE.match(line) and _is_marker(lines, index + 1, skip_fences=True):
            path = clean_path(line)
        index += 1
    if not summary or not summary[0]:
        raise reply_error("the reply has no `Summary:` line saying what changed and why", lines[0] if lines else "")
    return Proposal(summary=" ".join(summary), changes=list(changes.values()))


def _continues_summary(lines: list[str], index: int) -> bool:
    """A summary runs on to the next blank line, a marker, a DELETE line or a block's path line."""
    line = lines[index]
    if not line.strip() or FENCE.match(line) or DELETE.match(line) or _is_marker(lines, index):
        return False
    return not _is_marker(lines, index + 1, skip_fences=True)


def _is_marker(lines: list[str], index: int, *, skip_fences: bool = False) -> bool:
    """Whether a SEARCH marker starts at `index` (after a Markdown fence line, with skip_fences)."""
    while skip_fences and index < len(lines) and FENCE.match(lines[index]):
        index += 1
    return index < len(lines) and bool(SEARCH.match(lines[index]) or FILE.match(lines[index]))


def _add_edit(changes: dict[str, Change], path: str, search: str, replace: str, read_file: FileReader | None) -> None:
    change = changes.get(path)
    exists = read_file(path) is not None if read_file else None
    if not search.strip():
        if exists or (change is not None and change.change_type is ChangeType.UPDATE):
            raise reply_error(f"`{path}` exists: an empty SEARCH only creates new files; copy the lines to change", path)
        changes[path] = Change(file_path=path, change_type=ChangeType.CREATE, new_content=replace)
        return
    if change is None or change.change_type is not ChangeType.UPDATE:
        changes[path] = change = Change(file_path=path, change_type=ChangeType.UPDATE, edits=[Edit(search=search, replace=replace)])
    else:
        change.edits.append(Edit(search=search, replace=replace))


def _whole_file(path: str, content: str, read_file: FileReader | None) -> Change:
    current = read_file(path) if read_file else None
    if current is None:
        return Change(file_path=path, change_type=ChangeType.CREATE, new_content=content)
    if current.count("\n") > WHOLE_FILE_MAX_LINES:
        raise reply_error(
            f"`{path}` has {current.count(chr(10))} lines, too many to rewrite whole: change it with "
            "SEARCH/REPLACE blocks", path,
        )
    change = whole_file_update(path, current, content)
    if change is None:  # nothing to search for: an empty file is rewritten by its edit-free form
        raise reply_error(f"`{path}` is empty: DELETE it and write it again with an empty SEARCH block", path)
    return change


class SearchReplaceBlocks(EditFormat):
    name = "search-replace"
    constrained = False

    def parse(self, reply: str, read_file: FileReader | None = None) -> Proposal:
        return parse_blocks(reply, whole_files=False, read_file=read_file)


class WholeFile(EditFormat):
    name = "whole-file"
    constrained = False

    def parse(self, reply: str, read_file: FileReader | None = None) -> Proposal:
        return parse_blocks(reply, whole_files=True, read_file=read_file)
