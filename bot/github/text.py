"""Untrusted text from issues and comments, cleaned before it can reach a prompt.

Hidden characters (zero-width, bidirectional overrides, other format and control characters) and HTML
comments are invisible on github.com but fully visible to a model: they are how instructions get
smuggled into an otherwise innocent issue. We remove them; what a reader sees is what the model gets.
"""

from __future__ import annotations

import re
import unicodedata

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)  # an unclosed comment hides the rest too
_KEEP_CONTROL = {"\n", "\t"}


def _visible(ch: str) -> bool:
    if ch in _KEEP_CONTROL:
        return True
    category = unicodedata.category(ch)
    # Cc: control, Cf: format (zero-width, bidi marks and overrides, tag characters), Co/Cs/Cn: private,
    # surrogates, unassigned.
    return category not in ("Cc", "Cf", "Co", "Cs", "Cn")


def sanitize(text: str | None, *, max_chars: int = 20_000) -> str:
    """Return `text` without HTML comments and hidden characters, CRLF normalised, trimmed to `max_chars`."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HTML_COMMENT.sub("", text)
    text = "".join(ch for ch in text if _visible(ch))
    text = text.strip()
    if len(text) > max_chars:
        text = text[:max_chars].rstrip() + "\n[... truncated]"
    return text


def command_argument(body: str | None, command: str) -> str | None:
    """The text after `command` when the (sanitized) comment starts with it, else None.

    `/improve use a dataclass` → "use a dataclass"; `/improvement` is not the command.
    """
    clean = sanitize(body)
    if not clean.startswith(command):
        return None
    rest = clean[len(command):]
    if rest and not rest[0].isspace():
        return None
    return rest.strip()


# A closing keyword with an issue reference (`Closes #12`, `fixes octo/calc#3`, `resolves <issue URL>`) in a
# PR body closes that issue on merge; an @-mention notifies a person or a whole team.
_CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b[\s:]*"
    r"(?:#\d+|[\w.-]+/[\w.-]+#\d+|https?://\S+/(?:issues|pull)/\d+)",
    re.IGNORECASE,
)
_MENTION = re.compile(r"(?<![\w`/])@[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:/[A-Za-z0-9][\w.-]*)?")


def inert(text: str) -> str:
    """Model-written text for a PR body or comment, made harmless on GitHub: closing keywords with their
    reference and @-mentions go into inline code (shown as written, closing and notifying nobody), and
    hidden characters and HTML comments go, as in `sanitize`."""
    text = sanitize(text, max_chars=10_000)
    text = _CLOSING.sub(lambda m: f"`{m.group(0).replace('`', '')}`", text)
    return _MENTION.sub(lambda m: f"`{m.group(0)}`", text)
