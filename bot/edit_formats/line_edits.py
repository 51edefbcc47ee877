"""Line edits: JSON whose every anchor is a line the prompt showed, so a reply always applies.

    {"summary": "...", "edits": [{"file": "shop/cart.py", "line": "        return sum(...)", "replace": "..."}]}

Each edit names a file shown in the prompt and one of its lines, and gives the text that takes that
line's place (several lines to insert, "" to delete it). The JSON schema sent with the request is built
per request from the prompt (`request_schema`): `file` is one of the files the prompt showed and `line`
one of that file's shown lines that occur exactly once in it, so with a server that constrains decoding
(llama.cpp's grammar, Ollama's `format`, vLLM's guided decoding) a weak model cannot name a missing
file or misquote code. The parser checks the same against the current files (a server that ignores the
schema gets a repair request naming what was wrong) and repairs the replacement's indentation to the
anchor line's before the edit goes to bot/edits.py.

Anchors are written so that their JSON has no backslash (`anchor_text`): double quotes as single ones,
tabs as four spaces, and lines that would still need one (a backslash, non-ASCII) are not offered.
llama-cpp-python's schema-to-grammar converter (0.3.x, `_format_literal`) escapes `"` but not `\\`, so
a literal whose JSON holds `\\"` or `\\uXXXX` becomes a grammar llama.cpp cannot parse; the server then
samples with the NULL grammar it got back and dies of a segfault (issue 19). The parser maps an anchor
back to the file's own line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from bot.edit_formats.base import EditFormat
from bot.edit_formats.text_blocks import reply_error
from bot.llm.client import parse_reply
from bot.records import Change, ChangeType, Edit, Proposal

FileReader = Callable[[str], str | None]

HEADER = re.compile(r"^### (\S+)")  # a file block of the repository context (bot/context/excerpts.py)
FENCE = re.compile(r"^(`{3,})")
MAX_EDITS = 2
MAX_ANCHORS = 120  # lines offered in all: a larger grammar slows every sampled token
SUMMARY_MAX_CHARS = 120
REPLACE_MAX_CHARS = 400  # with the limits above a reply stays well within 512 tokens: never cut off


class LineEdit(BaseModel):
    file: str
    line: str  # one whole line of the file, without its newline
    replace: str  # what takes its place: any number of lines; "" deletes it


class LineEdits(BaseModel):
    """The reply; `request_schema` narrows `file` and `line` to what the prompt showed."""

    summary: str
    edits: list[LineEdit] = Field(default_factory=list)


def shown_lines(messages: list[dict[str, str]]) -> dict[str, list[str]]:
    """The code lines the prompt showed, per file: the fenced blocks after each `### path` header."""
    shown: dict[str, list[str]] = {}
    path: str | None = None
    fence: str | None = None
    for message in messages:
        if message.get("role") != "user":
            continue
        for line in message.get("content", "").splitlines():
            if fence is not None:
                if line.strip() == fence:
                    fence = None
                elif path is not None:
                    shown.setdefault(path, []).append(line)
            elif match := HEADER.match(line):
                path = match.group(1)
            elif (match := FENCE.match(line)) and path is not None:
                fence = match.group(1)
            elif line.startswith("## "):
                path = None  # a new section: code blocks that follow belong to no file
    return shown


def anchors(messages: list[dict[str, str]], read_file: FileReader | None) -> dict[str, list[str]]:
    """Per shown file that exists: the `anchor_text` of each shown line that is not blank and is the only
    line of its current text with that anchor."""
    found: dict[str, list[str]] = {}
    budget = MAX_ANCHORS
    for path, lines in shown_lines(messages).items():
        text = read_file(path) if read_file else None
        if text is None or budget <= 0 or not backslash_free(path):
            continue
        counts = Counter(anchor_text(own) for own in text.splitlines())
        unique = [anchor for line in dict.fromkeys(lines)
                  if line.strip() and occurs_once(text, line)
                  and (anchor := anchor_text(line)) is not None and counts[anchor] == 1][:budget]
        if unique:
            found[path] = unique
            budget -= len(unique)
    return found


def backslash_free(value: str) -> bool:
    return "\\" not in json.dumps(value)


def anchor_text(line: str) -> str | None:
    """How the schema quotes `line`: double quotes as single ones and tabs as four spaces, so that its JSON
    form has no backslash (see the module's docstring); None when it would still need one."""
    text = _unquoted(line)
    return text if backslash_free(text) else None


def _unquoted(line: str) -> str:
    return line.replace('"', "'").replace("\t", "    ")


def occurs_once(text: str, line: str) -> bool:
    """Whether `line` is one whole line of `text` and, newline included, found nowhere else in it (so the
    search text made of it matches that line alone)."""
    whole = text if text.endswith("\n") else text + "\n"
    return whole.count(line + "\n") == 1 and text.splitlines().count(line) == 1


def resolve_line(text: str, line: str) -> str | None:
    """The file's line that `line` quotes: itself when it occurs once, else the one line that equals it but
    for quotes, tabs and leading and trailing whitespace (an anchor, or a server that did not constrain
    the reply); None if none."""
    if occurs_once(text, line):
        return line
    loose = _unquoted(line).strip()
    alike = [own for own in text.splitlines() if loose and _unquoted(own).strip() == loose]
    return alike[0] if len(alike) == 1 and occurs_once(text, alike[0]) else None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def reindent(replace: str, anchor: str) -> str:
    """The replacement shifted so its first line has the anchor line's indentation (models often drop it)."""
    lines = replace.split("\n")
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return replace
    have, want = _indent(first), _indent(anchor)
    if have == want:
        return replace
    shifted = []
    for line in lines:
        if not line.strip():
            shifted.append(line)
        elif line.startswith(have):
            shifted.append(want + line[len(have):])
        else:
            shifted.append(want + line.lstrip())
    return "\n".join(shifted)


class JsonLineEdits(EditFormat):
    name = "json-line-edits"
    output_schema = LineEdits

    def request_schema(self, messages: list[dict[str, str]], read_file: FileReader | None) -> dict[str, Any]:
        """The schema for this prompt: each edit's file is a shown file, its line one of that file's anchors."""
        variants = [
            {
                "type": "object",
                "properties": {
                    "file": {"const": path},
                    "line": {"enum": lines},
                    "replace": {"type": "string", "maxLength": REPLACE_MAX_CHARS},
                },
                "required": ["file", "line", "replace"],
                "additionalProperties": False,
            }
            for path, lines in anchors(messages, read_file).items()
        ]
        edits: dict[str, Any] = {"type": "array", "maxItems": 0}
        if variants:
            edits = {"type": "array", "minItems": 1, "maxItems": MAX_EDITS, "items": {"anyOf": variants}}
        return {
            "title": "LineEdits",
            "type": "object",
            "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX_CHARS}, "edits": edits},
            "required": ["summary", "edits"],
            "additionalProperties": False,
        }

    def parse(self, reply: str, read_file: FileReader | None = None) -> Proposal:
        parsed = parse_reply(LineEdits, reply)
        changes: dict[str, Change] = {}
        done: set[tuple[str, str]] = set()
        for edit in parsed.edits:
            if (edit.file, edit.line) in done:
                continue  # the same line twice: the first edit stands
            done.add((edit.file, edit.line))
            text = read_file(edit.file) if read_file else ""
            if text is None:
                raise reply_error(f"`{edit.file}` is not a file of this repository: name a file the prompt showed",
                                  edit.file)
            line = resolve_line(text, edit.line) if read_file else edit.line
            if line is None:
                raise reply_error(f"`line` must be one whole line that occurs once in `{edit.file}`, copied exactly",
                                  edit.line)
            replace = reindent(edit.replace.rstrip("\n"), line)
            if replace in (line, anchor_text(line)):
                continue  # changes nothing (or only the quotes the anchor was written with)
            new = Edit(search=line + "\n", replace=replace + "\n" if replace else "")
            if edit.file in changes:
                changes[edit.file].edits.append(new)
            else:
                changes[edit.file] = Change(file_path=edit.file, change_type=ChangeType.UPDATE, edits=[new])
        if parsed.edits and not changes:
            raise reply_error("every edit's `replace` is the same as its `line`, so nothing changes: write the "
                              "line as it must be after the fix", parsed.edits[0].replace)
        return Proposal(summary=parsed.summary, changes=list(changes.values()))
