"""Edit formats: how the generator writes its changes, one module per format (`AURA_EDIT_FORMAT`).

Each format owns its parts of the generator prompt, the schema of its output and its parser (see
base.py); the generator asks the chosen format for them, and bot/edits.py applies the `Proposal` the
parser returns. To add a format, subclass `EditFormat` in a new module, add its prompt parts in
prompts/<name>.md, and list it in FORMATS.
"""

from bot.edit_formats.base import EditFormat, UnknownEditFormat
from bot.edit_formats.json_search_replace import JsonSearchReplace

FORMATS: dict[str, EditFormat] = {edit_format.name: edit_format for edit_format in (JsonSearchReplace(),)}
DEFAULT_EDIT_FORMAT = JsonSearchReplace.name


def get_format(name: str) -> EditFormat:
    """The registered format called `name`; UnknownEditFormat (a ValueError) naming the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise UnknownEditFormat(f"unknown edit format {name!r}: the known formats are {known}") from None


__all__ = ["DEFAULT_EDIT_FORMAT", "FORMATS", "EditFormat", "UnknownEditFormat", "get_format"]
