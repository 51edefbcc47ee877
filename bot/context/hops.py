"""One hop from the located code: the module-level names (regexes, constants), class attributes and
helper functions that the located definitions use, so a fix that changes `_VERSION_RE` or
`Parser.delimiters` rather than the function the task names still has its lines in the prompt.

A name is followed when the located code uses it and it is defined
- at module level in the same file (a variable, or a function that is not itself located), or
- as an attribute of the class that holds the located method (`self.NAME`, `cls.NAME`, `Class.NAME`), or
- at module level in exactly one other non-test file of the repository (an imported constant or helper).
Classes are not followed (they are large and usually located in their own right when the task names them).
"""

from __future__ import annotations

import re

from bot.context.index import RepoIndex
from bot.context.symbols import Symbol

MAX_HOPS = 8
MAX_HELPER_LINES = 60  # a longer function is a subject of its own, not a helper shown alongside
_IDENTIFIER = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]*)")
_ATTRIBUTE = re.compile(r"(?<![\w$])(?:self|cls|this|([A-Z]\w*))\.([A-Za-z_]\w*)")


def used_definitions(index: RepoIndex, located: list[Symbol], *, skip_paths: frozenset[str] = frozenset(),
                     limit: int = MAX_HOPS, is_test=lambda path: False) -> list[Symbol]:  # noqa: ANN001
    """The definitions the located ones use, in order of first use (variables before functions), each
    once, none overlapping a located definition."""
    variables: list[Symbol] = []
    functions: list[Symbol] = []

    def overlaps(symbol: Symbol) -> bool:
        return any(s.path == symbol.path and s.start <= symbol.end and symbol.start <= s.end for s in located)

    def keep(symbol: Symbol) -> None:
        if symbol in variables or symbol in functions or overlaps(symbol) or symbol.path in skip_paths:
            return
        if symbol.kind == "variable":
            variables.append(symbol)
        elif symbol.kind == "function" and symbol.size <= MAX_HELPER_LINES:
            functions.append(symbol)

    for holder in located:
        lines = index.lines(holder.path)[holder.start - 1 : holder.end]
        code = "\n".join(_code_part(line) for line in lines)
        own = index.symbols(holder.path)
        top_level = {s.name: s for s in own if s.qualname == s.name and s.kind in ("variable", "function")}
        owner = holder.qualname.rsplit(".", 1)[0] if "." in holder.qualname else ""
        for match in _ATTRIBUTE.finditer(code):
            cls, attribute = match.group(1) or owner, match.group(2)
            for symbol in own:
                if symbol.kind == "variable" and cls and symbol.qualname.endswith(f"{cls}.{attribute}"):
                    keep(symbol)
        for name in dict.fromkeys(_IDENTIFIER.findall(code)):
            if name == holder.name:
                continue
            if name in top_level:
                keep(top_level[name])
            elif name[0].isupper() or "_" in name:  # a constant or helper from another module
                elsewhere = [s for s in index.symbols_named(name) if s.path != holder.path and s.qualname == name
                             and s.kind in ("variable", "function") and not is_test(s.path)]
                if len(elsewhere) == 1:
                    keep(elsewhere[0])
    return (variables + functions)[:limit]


def _code_part(line: str) -> str:
    """The line without a trailing comment, roughly (strings may hold '#', which costs a name at most)."""
    stripped = line.lstrip()
    if stripped.startswith(("#", "//")):
        return ""
    return line
