"""Search terms of code: identifiers split at snake_case and CamelCase, plurals made singular, stopwords dropped."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOPWORDS = frozenset(
    "the a an and or not of to in on for is are be by it this that with as at from if else elif return def "
    "class import self none true false pass while try except finally raise yield lambda async await get set "
    "new use using when then should would could can do does make we you our your its into out".split()
)
_split_cache: dict[str, tuple[str, ...]] = {}


def _singular(part: str) -> str:
    """A plural's singular, roughly ("separators" -> "separator"), so a task's words meet the code's names."""
    if len(part) <= 4 or not part.endswith("s") or part.endswith(("ss", "us", "is")):
        return part
    if part.endswith("ies"):
        return part[:-3] + "y"
    return part[:-2] if part.endswith(("sses", "xes", "ches", "shes")) else part[:-1]


def _split_identifier(word: str) -> tuple[str, ...]:
    cached = _split_cache.get(word)
    if cached is not None:
        return cached
    parts = [_singular(p.lower()) for chunk in word.split("_") for p in _CAMEL_PART.findall(chunk)]
    whole = word.lower().strip("_")
    terms = [p for p in parts if len(p) > 1 and p not in STOPWORDS]
    if len(parts) > 1 and whole not in STOPWORDS:
        terms.append(whole)
    result = tuple(terms)
    if len(_split_cache) < 500_000:
        _split_cache[word] = result
    return result


def code_tokens(text: str) -> list[str]:
    """Search terms of a text: identifiers split at snake_case and CamelCase, plus the whole identifier."""
    out: list[str] = []
    for word in _IDENTIFIER.findall(text):
        out.extend(_split_identifier(word))
    return out
