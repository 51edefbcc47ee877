"""What every edit format provides: its name, its parts of the generator prompt, its output schema and
its parser.

An edit format is how the generator writes its changes. Whatever the format, its parser returns a
`records.Proposal`, the one data model the cycle sees, and bot/edits.py applies that proposal's changes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from importlib.resources import files
from typing import Any, ClassVar

from pydantic import BaseModel

from bot.records import Proposal

PART_MARKER = re.compile(r"^<!-- part: ([\w-]+) -->$", re.MULTILINE)
SLOT = re.compile(r"<!-- edit format: ([\w-]+) -->")


class EditFormat(ABC):
    """One way for the generator to write changes.

    Its prompt parts live in bot/edit_formats/prompts/<name>.md, each after a `<!-- part: NAME -->`
    line (text above the first marker is a comment and is not sent). A role prompt asks for a part
    with a `<!-- edit format: NAME -->` slot, which `assemble` replaces with the part's text.
    """

    name: ClassVar[str]  # the value of AURA_EDIT_FORMAT
    # the JSON schema the server constrains the reply to; a plain-text format names its result with it
    output_schema: ClassVar[type[BaseModel]] = Proposal
    constrained: ClassVar[bool] = True  # false: the reply is free text, no schema is sent

    @abstractmethod
    def parse(self, reply: str, read_file: Callable[[str], str | None] | None = None) -> Proposal:
        """The proposal in the model's reply. `read_file` gives a file's current text (None: no such
        file), for formats that write whole files. A reply that does not fit raises pydantic's
        ValidationError, which the LLM layer quotes in its one repair request."""

    def request_schema(
        self, messages: list[dict[str, str]], read_file: Callable[[str], str | None] | None
    ) -> dict[str, Any] | None:
        """The JSON schema to constrain this prompt's reply to, when it depends on the prompt (the files
        and lines it showed); None: `output_schema`'s."""
        return None

    @cached_property
    def prompt_parts(self) -> dict[str, str]:
        text = (files("bot.edit_formats") / "prompts" / f"{self.name}.md").read_text("utf-8")
        pieces = PART_MARKER.split(text)[1:]  # [name, text, name, text, ...]
        return {name: part.strip() for name, part in zip(pieces[::2], pieces[1::2], strict=True)}

    def assemble(self, prompt: str) -> str:
        """`prompt` with each `<!-- edit format: NAME -->` slot replaced by this format's part NAME."""

        def part(slot: re.Match[str]) -> str:
            name = slot.group(1)
            if name not in self.prompt_parts:
                known = sorted(self.prompt_parts)
                raise ValueError(f"edit format {self.name}: no prompt part {name!r} (it has {known})")
            return self.prompt_parts[name]

        return SLOT.sub(part, prompt)
