"""The oracle: a model whose answer is the instance's gold patch, so a run proves what the bot does with a
correct fix (SWE-bench validates its instances the same way, with their gold patches).

`OracleLLM` has the one method the roles call on the LLM layer, `structured(...)`, and returns what it
returns: the reply as the role's schema and the `LLMCall` records. The generator gets the gold patch as
a `Proposal` (each hunk a search/replace edit with enough context to match once, new files created,
deleted files deleted); the discriminator a perfect rubric that says it is the oracle's; the agitator a
short note. The model is named "oracle" in every record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from bot.llm.client import PromptTooLarge
from bot.records import AgitatorGuidance, Change, ChangeType, Edit, LLMCall, Proposal, Rubric
from bot.llm.tokens import TokenCounter, count_message_tokens, count_tokens
from bot.workspace import GitError, run_git

T = TypeVar("T", bound=BaseModel)
ORACLE = "oracle"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class OracleError(Exception):
    """A gold patch the oracle cannot express as edits (binary files, a patch that does not fit the base)."""


@dataclass
class FilePatch:
    old_path: str | None  # None: the file is created
    new_path: str | None  # None: the file is deleted
    hunks: list[tuple[int, list[str], list[str]]] = field(default_factory=list)  # (old start, old lines, new lines)
    binary: bool = False


def parse_patch(diff: str) -> list[FilePatch]:
    """The files of a git diff with their hunks; lines keep their newline ("\\ No newline" honoured)."""
    files: list[FilePatch] = []
    current: FilePatch | None = None
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            current = FilePatch(old_path="", new_path="")
            files.append(current)
        elif current is None:
            pass
        elif line.startswith("--- "):
            current.old_path = None if line[4:].strip() == "/dev/null" else line[4:].strip().removeprefix("a/")
        elif line.startswith("+++ "):
            current.new_path = None if line[4:].strip() == "/dev/null" else line[4:].strip().removeprefix("b/")
        elif line.startswith(("Binary files ", "GIT binary patch")):
            current.binary = True
        elif match := _HUNK.match(line):
            old_count = int(match.group(2)) if match.group(2) is not None else 1
            new_count = int(match.group(4)) if match.group(4) is not None else 1
            old: list[str] = []
            new: list[str] = []
            previous = " "
            i += 1
            while i < len(lines) and (old_count > len(old) or new_count > len(new) or lines[i].startswith("\\")):
                text = lines[i]
                if text.startswith("\\"):  # "\ No newline at end of file": the line before has no newline
                    for side in (old, new) if previous == " " else ((old,) if previous == "-" else (new,)):
                        side[-1] = side[-1].rstrip("\n")
                else:
                    previous, body = (" ", "\n") if text == "\n" else (text[:1], text[1:])
                    if previous == " ":
                        old.append(body)
                        new.append(body)
                    elif previous == "-":
                        old.append(body)
                    elif previous == "+":
                        new.append(body)
                i += 1
            current.hunks.append((int(match.group(1)), old, new))
            continue
        i += 1
    for patch in files:  # a rename or mode change without content: the diff header names the paths
        if patch.old_path == "" and patch.new_path == "":
            raise OracleError("the gold patch changes a file without content changes (a rename or mode change), "
                              "which edits cannot express")
    return files


def _unique_edit(text: str, old: str, new: str, position: int) -> tuple[str, str]:
    """A search text that matches `text` once at `position` (where `old` starts): `old` with whole lines
    of context added around it until no other place matches."""
    before = text[:position].splitlines(keepends=True)
    after = text[position + len(old):].splitlines(keepends=True)
    prefix, suffix = "", ""
    while True:
        search = prefix + old + suffix
        if search and text.count(search) == 1:
            return search, prefix + new + suffix
        if not before and not after:
            raise OracleError("a hunk's text cannot be told apart from the rest of its file")
        if before:
            prefix = before.pop() + prefix
        if after:
            suffix = suffix + after.pop(0)


def patch_to_proposal(diff: str, base_text: Callable[[str], str], *, summary: str = "") -> Proposal:
    """The gold patch as the edit format's Proposal. `base_text(path)` returns a file's text at base."""
    changes: list[Change] = []
    for patch in parse_patch(diff):
        if patch.binary:
            raise OracleError(f"the gold patch changes the binary file {patch.new_path or patch.old_path}")
        if patch.old_path is None:
            content = "".join(line for _, _, new in patch.hunks for line in new)
            changes.append(Change(file_path=patch.new_path, change_type=ChangeType.CREATE, new_content=content,
                                  rationale="the gold patch creates this file"))
            continue
        if patch.new_path is None:
            changes.append(Change(file_path=patch.old_path, change_type=ChangeType.DELETE,
                                  rationale="the gold patch deletes this file"))
            continue
        if patch.new_path != patch.old_path:  # a rename with changes: delete the old path, create the new one
            raise OracleError(f"the gold patch renames {patch.old_path} to {patch.new_path}, which edits cannot express")
        text = base_text(patch.old_path)
        edits: list[Edit] = []
        shift = 0  # how far earlier edits moved the text below them
        line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        for start, old_lines, new_lines in patch.hunks:
            old, new = "".join(old_lines), "".join(new_lines)
            index = min(max(start - 1, 0) if old_lines else start, len(line_starts) - 1)
            position = line_starts[index] + shift
            if text[position:position + len(old)] != old:
                raise OracleError(f"the gold patch does not fit {patch.old_path} at base (hunk at line {start})")
            search, replace = _unique_edit(text, old, new, position)
            edits.append(Edit(search=search, replace=replace))
            text = text[:position] + new + text[position + len(old):]
            shift += len(new) - len(old)
        if edits:
            changes.append(Change(file_path=patch.old_path, change_type=ChangeType.UPDATE, edits=edits,
                                  rationale="the gold patch"))
    return Proposal(summary=summary or "Apply the known fix (the oracle's answer)", changes=changes)


def gold_proposal(repo: Path, base: str, patch: str, summary: str = "") -> Proposal:
    """The gold patch of an instance as a Proposal, reading the base's files from the git repository `repo`."""
    if not patch.strip():
        raise OracleError("the instance has no gold `patch` for the oracle to answer with")

    def base_text(path: str) -> str:
        try:
            return run_git(["show", f"{base}:{path}"], repo)
        except GitError as exc:
            raise OracleError(f"the gold patch updates {path}, which is not in the base commit") from exc

    return patch_to_proposal(patch, base_text, summary=summary)


ORACLE_RUBRIC = Rubric(coverage=1.0, accuracy=1.0, coherence=1.0, formatting=1.0, issues=[],
                       comments=["oracle: the known fix, scored perfect without a review"])
ORACLE_GUIDANCE = AgitatorGuidance(
    guidance="oracle: the known fix fell short of approval; the checks above say why (an environment problem, "
             "since the fix itself is known to be right).")


class OracleLLM:
    """Answers every role without a model: the generator with `proposal`, the reviewers as the oracle."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.prompts: list[list[dict[str, str]]] = []  # the generator's prompts, first attempt first
        self._counter = TokenCounter()

    # what the roles ask of a model client (bot/llm/client.py: ModelClient, and the RoleModel each role gets)
    async def ensure_models(self, models: Iterable[str]) -> None:
        """Nothing to pull."""

    def for_role(self, role: str) -> OracleLLM:
        return self

    async def context_window(self, model: str, configured: int) -> int:
        return configured

    def counter(self, model: str) -> TokenCounter:
        return self._counter

    async def count_prompt(self, model: str, messages: list[dict[str, str]]) -> tuple[int, bool]:
        return self._counter.count_messages(messages), False

    async def aclose(self) -> None:
        """Nothing to close."""

    async def structured(
        self,
        *,
        role: str,
        model: str,
        messages: list[dict[str, str]],
        schema: type[T],
        num_ctx: int,
        max_output_tokens: int,
        temperature: float = 0.2,
        seed: int | None = None,
        parse: Callable[[str], T] | None = None,
        constrain: bool = True,
        request_schema: dict[str, Any] | None = None,  # the server-side constraint: the oracle's answer is fixed
    ) -> tuple[T, list[LLMCall]]:
        prompt_tokens = count_message_tokens(messages)
        if prompt_tokens + max_output_tokens > num_ctx:  # the same refusal the real layer gives
            raise PromptTooLarge(role=role, prompt_tokens=prompt_tokens, max_output_tokens=max_output_tokens,
                                 num_ctx=num_ctx)
        reply: Any
        if role == "generator":
            self.prompts.append(messages)
            reply = self.proposal.model_dump_json()
            answer = parse(reply) if parse is not None else schema.model_validate_json(reply)
        elif role == "discriminator":
            reply, answer = ORACLE_RUBRIC.model_dump_json(), ORACLE_RUBRIC
        else:
            reply, answer = ORACLE_GUIDANCE.model_dump_json(), ORACLE_GUIDANCE
        call = LLMCall(role=role, model=ORACLE, prompt_tokens=prompt_tokens, completion_tokens=count_tokens(reply))
        return answer, [call]  # type: ignore[return-value]
