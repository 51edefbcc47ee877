"""JSON search/replace, the default edit format: one JSON object shaped like `Proposal`.

Each update is a list of search/replace edits, each create a whole new file, each delete a path.
The server constrains decoding to the Proposal schema; the parser validates the reply and tolerates a
Markdown code fence around the JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.edit_formats.base import EditFormat
from bot.llm.client import parse_reply
from bot.records import Proposal


class JsonSearchReplace(EditFormat):
    name = "json-search-replace"
    output_schema = Proposal

    def parse(self, reply: str, read_file: Callable[[str], str | None] | None = None) -> Proposal:
        return parse_reply(Proposal, reply)
