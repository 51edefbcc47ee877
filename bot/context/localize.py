"""Localization: the definitions a task is about, found from what it names, shown whole.

Names come from the task's title and body (backticked code, `name()` calls, `module.func` and
`Class.method`, snake_case and CamelCase identifiers, plain words that name a function, `path:line`
references and traceback frames) and from the previous attempt's failing tests (test ids and their
tracebacks). Each resolves to definitions in the index (symbols.py). They are ranked: what the title
names first, then the body, then the failures; explicit names before bare words; code before tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bot.context.excerpts import MIN_PART_TOKENS, fence_for, lines_matching, merge_windows
from bot.context.hops import used_definitions
from bot.context.index import RepoIndex
from bot.context.symbols import Symbol, innermost
from bot.context.terms import STOPWORDS, code_tokens
from bot.path_kinds import is_test_path
from bot.context.tracebacks import PATH_LINE, PY_FRAME
from bot.records import Task
from bot.llm.tokens import count_tokens
from sandbox.reports import CheckReport

TITLE, BODY, FAILURE, SEARCH = 0, 1, 2, 3  # where a name was found (SEARCH: the task's words, by term weight)
EXPLICIT, IDENTIFIER, WORD, USAGE = 0, 1, 2, 3  # how surely it names code
MAX_DEFINITIONS = 8
USAGE_LIMIT = 3  # a name that is used, not defined: the definitions using it, when at most this many do
USAGE_NAMES = 5  # how many such names of a task are looked up (each lookup reads every file)
WORD_LIMIT = 2  # a plain word counts when at most this many functions or classes bear its name
SEARCH_FILES = 12  # definition search looks in the code files lexical search ranks highest
AMBIGUOUS = 4  # a name defined more often than this counts only where lexical search ranks the file
SEARCH_DEFINITIONS = 3
CUT_RADII = (12, 8, 5, 3, 1, 0)
SECTION_TITLE = "Code the task is about (whole definitions, most relevant first)"
HOPS_TITLE = "Used by the code above (module-level names, class attributes, helpers):"
HOP_SHARE = 0.25  # of the section, set aside for what the located code uses

_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w.]*/)")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(")
_SNAKE = re.compile(r"(?<![\w.])(_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+)(?![\w(])")
_CAMEL = re.compile(r"(?<![\w.])([a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)(?![\w(])")
_WORD = re.compile(r"(?<![\w.`])([a-z][a-z0-9]{3,})(?![\w(`])")
_FILE_SUFFIXES = frozenset("py pyi js ts tsx jsx go rs md rst txt toml json yml yaml cfg ini html css sh lock".split())
_PATH_LIKE = re.compile(r"[\w.\-]*/[\w./\-]*|[\w\-]+\.(?:" + "|".join(_FILE_SUFFIXES) + r")\b")
@dataclass(frozen=True)
class Mention:
    """A name the task uses: `qualifier` is what came before its last dot ("Signer" in Signer.sign)."""

    name: str
    qualifier: str
    source: int
    strength: int
    order: int


@dataclass(frozen=True)
class Located:
    symbol: Symbol
    rank: tuple[int | str, ...]
    focus: tuple[int, ...] = field(default=())  # lines named by a traceback or a line reference


def symbol_mentions(text: str, source: int) -> list[Mention]:
    """The names a text uses, surest first within each kind, each once."""
    prose = _PATH_LIKE.sub(" ", _FENCED.sub(" ", text))  # paths are resolved as files, not as names
    found: list[Mention] = []

    def add(dotted: str, strength: int) -> None:
        parts = [p for p in dotted.split(".") if p]
        if not parts or parts[-1] in _FILE_SUFFIXES or parts[-1] in ("self", "cls"):
            return
        qualifier = parts[-2] if len(parts) > 1 and parts[-2] not in ("self", "cls") else ""
        found.append(Mention(parts[-1], qualifier, source, strength, len(found)))

    for span in _CODE_SPAN.findall(prose):
        for match in re.finditer(r"[A-Za-z_][\w.]*", span):
            add(match.group(0).strip("."), EXPLICIT)
    for match in _CALL.finditer(text):
        add(match.group(1), EXPLICIT)
    for match in _DOTTED.finditer(prose):
        add(match.group(1), EXPLICIT)
    for pattern in (_SNAKE, _CAMEL):
        for match in pattern.finditer(prose):
            add(match.group(1), IDENTIFIER)
    for match in _WORD.finditer(prose):
        if match.group(1) not in STOPWORDS:
            add(match.group(1), WORD)
    best: dict[tuple[str, str], Mention] = {}
    for mention in found:
        key = (mention.name, mention.qualifier)
        if key not in best or (mention.strength, mention.order) < (best[key].strength, best[key].order):
            best[key] = mention
    return sorted(best.values(), key=lambda m: (m.strength, m.order))


def line_references(index: RepoIndex, text: str) -> list[tuple[str, int]]:
    """Indexed (path, line) pairs a text points at: `path.py:123` and traceback frames, innermost first."""
    found: list[tuple[str, int]] = []
    for pattern in (PY_FRAME, PATH_LINE):
        for match in pattern.finditer(text):
            path = index.resolve_mention(match.group(1))
            if path is not None:
                found.append((path, int(match.group(2))))
    return list(dict.fromkeys(reversed(found)))  # tracebacks list the innermost frame last


def _resolve(index: RepoIndex, mention: Mention) -> list[Symbol]:
    """The definitions a name means; a qualifier narrows them when it matches a class or a module."""
    symbols = index.symbols_named(mention.name)
    if mention.strength == WORD:
        symbols = [s for s in symbols if s.kind != "variable" and not is_test_path(s.path)]
        return symbols if len(symbols) <= WORD_LIMIT else []
    if mention.qualifier:
        narrowed = [s for s in symbols if s.qualname.endswith(f"{mention.qualifier}.{mention.name}")
                    or mention.qualifier in PurePosixPath(s.path).with_suffix("").parts]
        symbols = narrowed or symbols
    return symbols


def _users(index: RepoIndex, name: str) -> list[Symbol]:
    """The functions and classes of non-test code whose lines use `name`, when there are few."""
    word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
    users: list[Symbol] = []
    for path in index.paths:
        if is_test_path(path) or name not in (index.text(path) or ""):
            continue
        for number, line in enumerate(index.lines(path), start=1):
            holder = innermost(index.symbols(path), number) if word.search(line) else None
            if holder is not None and holder not in users:
                users.append(holder)
                if len(users) > USAGE_LIMIT:
                    return []
    return users


def failure_references(index: RepoIndex, report: CheckReport | None) -> list[tuple[str, int]]:
    """(path, line) of failing tests' own functions and of their traceback frames, innermost first."""
    found: list[tuple[str, int]] = []
    if report is None:
        return found
    for check in report.failed_checks:
        for test in check.failing_tests:
            found += line_references(index, f"{test.traceback}\n{test.message}")
            test_file, _, test_name = test.test_id.partition("::")
            path = index.resolve_mention(test_file)
            qualname = ".".join(part.split("[")[0] for part in test_name.split("::") if part)
            for symbol in index.symbols(path) if path and qualname else []:
                if symbol.qualname == qualname or symbol.qualname.endswith("." + qualname):
                    found.append((path, symbol.start))
        if not check.failing_tests:
            found += line_references(index, check.output)
    return list(dict.fromkeys(found))


def search_definitions(index: RepoIndex, task: Task, k: int = SEARCH_DEFINITIONS) -> list[Symbol]:
    """The functions and methods of non-test code whose names and bodies share the task's weightiest
    terms (a term in the name counts double), best first: for a task that names no code."""
    terms = {t: index.term_weight(t) for t in code_tokens(task.text) if len(t) > 2}
    scored: list[tuple[float, int, Symbol]] = []
    hits = [path for path, _ in index.search(task.text, k=SEARCH_FILES * 10)]  # test data can crowd the top
    code_files = [path for path in hits if not is_test_path(path) and index.symbols(path)][:SEARCH_FILES]
    for path in code_files:
        lines = index.lines(path)
        for symbol in index.symbols(path):
            if symbol.kind not in ("function", "method"):
                continue
            name_terms = set(code_tokens(symbol.qualname))
            body_terms = set(code_tokens("\n".join(lines[symbol.start - 1 : symbol.end])))
            score = sum(w * (2 if t in name_terms else 1) for t, w in terms.items() if t in body_terms | name_terms)
            if score > 0:
                scored.append((-score, symbol.size, symbol))
    scored.sort(key=lambda entry: entry[:2])
    best = -scored[0][0] if scored else 0.0
    return [symbol for score, _, symbol in scored[:k] if -score >= best / 2]


def locate(index: RepoIndex, task: Task, report: CheckReport | None = None, *,
           skip_paths: frozenset[str] = frozenset(), limit: int = MAX_DEFINITIONS) -> list[Located]:
    """The definitions the task is about, most relevant first, none inside another, at most `limit`."""
    candidates: list[Located] = []

    def add(symbol: Symbol, source: int, strength: int, order: int, qualified: bool, focus: tuple[int, ...] = ()):
        if symbol.path in skip_paths:
            return
        rank = (source, strength, is_test_path(symbol.path), not qualified, symbol.kind == "variable", order,
                symbol.path, symbol.start)
        candidates.append(Located(symbol, rank, focus))

    texts = [(task.title, TITLE), (task.body, BODY)]
    relevant_files: set[str] | None = None

    def narrowed(symbols: list[Symbol]) -> list[Symbol]:
        """A common name (`value`, `name`) means little alone: keep its definitions in relevant files."""
        nonlocal relevant_files
        if len(symbols) <= AMBIGUOUS:
            return symbols
        if relevant_files is None:
            relevant_files = {path for path, _ in index.search(task.text, k=SEARCH_FILES)}
        return [s for s in symbols if s.path in relevant_files and s.kind != "variable"][:AMBIGUOUS]

    usage_lookups = USAGE_NAMES
    for text, source in texts:
        for order, (path, line) in enumerate(line_references(index, text), start=-1000):  # innermost first
            if (holder := innermost(index.symbols(path), line)) is not None:
                add(holder, source, EXPLICIT, order, True, (line,))
        for mention in symbol_mentions(text, source):
            symbols = _resolve(index, mention)
            if symbols:
                for symbol in narrowed(symbols):
                    qualified = not mention.qualifier or symbol.qualname.endswith(f"{mention.qualifier}.{symbol.name}")
                    add(symbol, source, mention.strength, mention.order, qualified)
            elif mention.strength in (EXPLICIT, IDENTIFIER) and usage_lookups > 0:
                usage_lookups -= 1
                for symbol in _users(index, mention.name):
                    add(symbol, source, USAGE, mention.order, False)
    for order, (path, line) in enumerate(failure_references(index, report)):
        if (holder := innermost(index.symbols(path), line)) is not None:
            add(holder, FAILURE, EXPLICIT, order, True, (line,))
    for order, symbol in enumerate(search_definitions(index, task)):
        add(symbol, SEARCH, EXPLICIT, order, True)

    chosen: list[Located] = []
    for candidate in sorted(candidates, key=lambda c: c.rank):
        symbol = candidate.symbol
        same = next((c for c in chosen if c.symbol == symbol), None)
        if same is not None:  # named twice: keep the first rank, and every line it was named at
            chosen[chosen.index(same)] = Located(symbol, same.rank, same.focus + candidate.focus)
        elif not any(c.symbol.path == symbol.path and c.symbol.start <= symbol.end and symbol.start <= c.symbol.end
                     for c in chosen) and len(chosen) < limit:
            chosen.append(candidate)
    return chosen


def definition_block(index: RepoIndex, located: Located, max_tokens: int, terms: dict[str, float]) -> str | None:
    """The definition whole with its path and line numbers, or, when it does not fit, its first line and
    the lines around those the task points at or whose terms match it. None when not even that fits."""
    symbol = located.symbol
    lines = index.lines(symbol.path)[symbol.start - 1 : symbol.end]
    if not lines:
        return None
    fence, language = fence_for(symbol.path, "\n".join(lines))
    header = f"### {symbol.path} (lines {symbol.start}-{symbol.end}, {symbol.label}"
    whole = f"{header})\n{fence}{language}\n" + "\n".join(lines) + f"\n{fence}"
    if count_tokens(whole) <= max_tokens:
        return whole
    if max_tokens < MIN_PART_TOKENS:
        return None
    pointed = [n - symbol.start + 1 for n in located.focus if symbol.contains(n)]
    focus = list(dict.fromkeys([1, *pointed, *lines_matching(lines, terms)]))
    while focus:
        for radius in CUT_RADII:
            chunks = [f"{header}; cut to the lines that matter)"]
            for start, end in merge_windows(focus, radius, len(lines)):
                body = "\n".join(lines[start - 1 : end])
                first, last = start + symbol.start - 1, end + symbol.start - 1
                chunks.append(f"lines {first}-{last}:\n{fence}{language}\n{body}\n{fence}")
            block = "\n".join(chunks)
            if count_tokens(block) <= max_tokens:
                return block
        focus = focus[: len(focus) // 2]
    return None


def located_body(index: RepoIndex, located: list[Located], max_tokens: int, terms: dict[str, float]) -> str:
    """The definitions in rank order within `max_tokens`, then what they use (hops.py) in a share of it and
    whatever room they leave; a located definition that did not fit is named at the end."""
    if not located:
        return ""
    note = "Not shown for lack of room: " + "; ".join(_where(c.symbol) for c in located)
    hops = used_definitions(index, [c.symbol for c in located], is_test=is_test_path)
    used = _hop_blocks(index, hops, int(max_tokens * HOP_SHARE), terms)
    available = max_tokens - count_tokens(note) - 2 - sum(count_tokens(b) + 1 for b in used.values())
    blocks: dict[Symbol, str] = {}
    for position, candidate in enumerate(located):
        # In rank order, each may take all but a minimal part for each one after it, and at least an even share.
        after = len(located) - position - 1
        room = max(available // (after + 1), available - MIN_PART_TOKENS * after)
        block = definition_block(index, candidate, room, terms)
        if block is not None:
            blocks[candidate.symbol] = block
            available -= count_tokens(block) + 1
    used |= _hop_blocks(index, [s for s in hops if s not in used], available - count_tokens(HOPS_TITLE), terms)
    parts = [blocks[c.symbol] for c in located if c.symbol in blocks]
    if used:
        parts.append(HOPS_TITLE + "\n\n" + "\n\n".join(used[s] for s in hops if s in used))
    left_out = [c.symbol for c in located if c.symbol not in blocks]
    if left_out:
        parts.append("Not shown for lack of room: " + "; ".join(_where(s) for s in left_out))
    return "\n\n".join(parts)


def _hop_blocks(index: RepoIndex, symbols: list[Symbol], max_tokens: int, terms: dict[str, float]) -> dict[Symbol, str]:
    """Each definition whole (or cut) while the room lasts, in order."""
    blocks: dict[Symbol, str] = {}
    for symbol in symbols:
        block = definition_block(index, Located(symbol, ()), max_tokens, terms)
        if block is not None:
            blocks[symbol] = block
            max_tokens -= count_tokens(block) + 1
    return blocks


def _where(symbol: Symbol) -> str:
    return f"{symbol.path} lines {symbol.start}-{symbol.end} ({symbol.label})"
