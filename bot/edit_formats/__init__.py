"""Edit formats: how the generator writes its changes, one module per format (`AURA_EDIT_FORMAT`).

Each format owns its parts of the generator prompt, the schema of its output and its parser (see
base.py); the generator asks the chosen format for them, and bot/edits.py applies the `Proposal` the
parser returns. To add a format, subclass `EditFormat` in a new module, add its prompt parts in
prompts/<name>.md, and list it in FORMATS.
"""

from fnmatch import fnmatchcase

from bot.config import EDIT_FORMATS, Settings, known_edit_format
from bot.edit_formats.base import EditFormat
from bot.edit_formats.json_search_replace import JsonSearchReplace
from bot.edit_formats.line_edits import JsonLineEdits
from bot.edit_formats.text_blocks import SearchReplaceBlocks, WholeFile
from bot.errors import UnknownEditFormat

FORMATS: dict[str, EditFormat] = {
    edit_format.name: edit_format for edit_format in (JsonSearchReplace(), SearchReplaceBlocks(), WholeFile(), JsonLineEdits())
}
DEFAULT_EDIT_FORMAT = JsonSearchReplace.name
if sorted(FORMATS) != sorted(EDIT_FORMATS):  # the settings validate names against EDIT_FORMATS
    raise RuntimeError(f"bot.config.EDIT_FORMATS {EDIT_FORMATS} does not name the formats {sorted(FORMATS)}")

# Defaults per model family (globs over the model's name, lower-cased), first match wins; any other
# model keeps json-search-replace, the documented default. Code wrapped
# in JSON costs weak models quality (aider: DeepSeek Coder V2 60.6 % -> 51.1 %), and the weakest do
# best rewriting whole small files (Qwen2.5-Coder-32B: 16.4 % whole-file, 8.0 % search/replace diffs).
FAMILY_DEFAULTS: list[tuple[str, str]] = [
    ("*smollm*", WholeFile.name),
    ("*gemma3*270m*", WholeFile.name),
    ("*gemma-3*270m*", WholeFile.name),
    ("*qwen2.5-coder*0.5b*", WholeFile.name),
    ("*qwen2.5-coder*1.5b*", WholeFile.name),
    ("*deepseek-coder*", SearchReplaceBlocks.name),
]


def format_for_model(model: str, per_model: dict[str, str] | None = None, chosen: str | None = None) -> str:
    """The edit format for `model`: the first glob of `per_model` that matches it, else `chosen` (an
    explicit AURA_EDIT_FORMAT), else its family's default, else json-search-replace."""
    name = model.lower()
    for pattern, edit_format in (per_model or {}).items():
        if fnmatchcase(name, pattern.lower()):
            return get_format(edit_format).name
    if chosen:
        return get_format(chosen).name
    return next((fmt for pattern, fmt in FAMILY_DEFAULTS if fnmatchcase(name, pattern)), DEFAULT_EDIT_FORMAT)


def edit_format_for(settings: Settings, model: str) -> str:
    """The generator's edit format for `model`: AURA_EDIT_FORMATS, then AURA_EDIT_FORMAT when set,
    then the model family's default, then json-search-replace."""
    chosen = settings.edit_format if "edit_format" in settings.model_fields_set else None
    return format_for_model(model, settings.edit_formats, chosen)


def get_format(name: str) -> EditFormat:
    """The registered format called `name`; UnknownEditFormat (a ValueError) naming the known ones."""
    return FORMATS.get(name) or FORMATS[known_edit_format(name)]


__all__ = [
    "DEFAULT_EDIT_FORMAT", "FAMILY_DEFAULTS", "FORMATS", "EditFormat", "UnknownEditFormat", "edit_format_for",
    "format_for_model", "get_format",
]
