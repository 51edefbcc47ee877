"""Where each function, method and class of a file starts and ends, nested ones included.

Python through `ast`; other languages (Go, JavaScript/TypeScript, Rust, Java, ...) through a line
regex and brace matching, which is approximate but needs no parser per language.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True, slots=True)
class Symbol:
    """A definition: `start` and `end` are 1-based and inclusive; `start` includes decorators."""

    path: str
    name: str
    qualname: str  # "Class.method", "outer.inner"
    kind: str  # "function", "method", "class", "variable"
    start: int
    end: int

    def contains(self, line: int) -> bool:
        return self.start <= line <= self.end

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def label(self) -> str:
        return f"{self.kind} {self.qualname}"


def parse_python(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def python_symbols(path: str, tree: ast.Module) -> list[Symbol]:
    """Functions, methods and classes at any depth, and module- and class-level assignments."""
    found: list[Symbol] = []

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{node.name}"
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if isinstance(node, ast.ClassDef):
                    kind = "class"
                else:
                    kind = "method" if in_class else "function"
                found.append(Symbol(path, node.name, qualname, kind, start, node.end_lineno or node.lineno))
                visit(node.body, qualname + ".", isinstance(node, ast.ClassDef))
            elif isinstance(node, ast.Assign | ast.AnnAssign) and (prefix == "" or in_class):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.append(Symbol(path, target.id, f"{prefix}{target.id}", "variable", node.lineno,
                                            node.end_lineno or node.lineno))

    visit(tree.body, "", False)
    return found


# One definition per line, in the usual spellings of C-family and scripting languages.
_GO_FUNC = re.compile(r"^func\s+(?:\(\s*\w*\s*\*?\s*(\w+)(?:\[[^\]]*\])?\s*\)\s*)?(\w+)")
_GO_TYPE = re.compile(r"^type\s+(\w+)\s")
_GO_VALUE = re.compile(r"^(?:var|const)\s+(\w+)\b")  # one top-level name; `var (...)` groups are not split
_FUNCTION = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:pub(?:\([\w:]+\))?\s+)?(?:async\s+)?(?:unsafe\s+)?"
    r"(?:function\*?|fn|def)\s+([A-Za-z_$][\w$]*)"
)
_CLASS = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:pub(?:\([\w:]+\))?\s+)?(?:public\s+|private\s+|abstract\s+|final\s+)*"
    r"(?:class|interface|struct|trait|enum|impl)\s+([A-Za-z_$][\w$]*)"
)
_BINDING = re.compile(r"^(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=(.*)")
_METHOD = re.compile(
    r"^\s+(?:(?:public|private|protected|static|async|override|readonly|get|set)\s+)*\*?"
    r"(#?[A-Za-z_$][\w$]*)\s*\([^;]*\)\s*(?::\s*[^{;]+)?\{\s*$"
)
_NOT_METHODS = frozenset({"if", "for", "while", "switch", "catch", "function", "return", "with", "else", "do"})
_STRINGS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`(?:\\.|[^`\\])*`")
_LINE_COMMENT = re.compile(r"(?<!:)//.*$|^\s*#.*$")
MAX_BLOCK_LINES = 2000
CODE_SUFFIXES = frozenset(".js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .cs .c .h .cpp .hpp .php .swift .scala "
                          ".rb .sh".split())


def regex_symbols(path: str, text: str) -> list[Symbol]:
    """Definitions found line by line; each ends where its braces close (or at its own line)."""
    lines = text.splitlines()
    go = PurePosixPath(path).suffix == ".go"
    found: list[Symbol] = []
    classes: list[Symbol] = []
    for number, line in enumerate(lines, start=1):
        kind, name, owner = _match_definition(line, go)
        if name is None:
            enclosing = [c for c in classes if c.start < number <= c.end]
            match = _METHOD.match(line) if enclosing else None
            if match is None or match.group(1) in _NOT_METHODS:
                continue
            kind, name, owner = "method", match.group(1), enclosing[-1].qualname
        end = _block_end(lines, number)
        qualname = f"{owner}.{name}" if owner else name
        symbol = Symbol(path, name, qualname, kind, _doc_comment_start(lines, number), end)
        found.append(symbol)
        if kind == "class":
            classes.append(symbol)
    return found


def _match_definition(line: str, go: bool) -> tuple[str, str | None, str]:
    if go:
        if match := _GO_FUNC.match(line):
            receiver = match.group(1) or ""
            return ("method" if receiver else "function"), match.group(2), receiver
        if match := _GO_TYPE.match(line):
            return "class", match.group(1), ""
        if match := _GO_VALUE.match(line):
            return "variable", match.group(1), ""
        return "", None, ""
    if match := _FUNCTION.match(line):
        return "function", match.group(1), ""
    if match := _CLASS.match(line):
        return "class", match.group(1), ""
    if match := _BINDING.match(line):  # top-level only: `const f = (x) => ...` is a function
        value = match.group(2)
        return ("function" if "=>" in value or "function" in value else "variable"), match.group(1), ""
    return "", None, ""


def _doc_comment_start(lines: list[str], start: int) -> int:
    """The first line of the comment right above a definition (`//` lines or a `/* */` block), else `start`."""
    first = start
    while first > 1:
        above = lines[first - 2].strip()
        if above.startswith("//"):
            first -= 1
        elif above.endswith("*/"):
            opening = next((n for n in range(first - 1, 0, -1) if "/*" in lines[n - 1]), None)
            if opening is None:
                break
            first = opening
        else:
            break
    return first


def _block_end(lines: list[str], start: int) -> int:
    """The line where the braces opened on or after `start` close; `start` itself for a one-liner."""
    depth = 0
    opened = False
    for number in range(start, min(len(lines), start + MAX_BLOCK_LINES) + 1):
        code = _LINE_COMMENT.sub("", _STRINGS.sub('""', lines[number - 1]))
        for char in code:
            if char in "{([":
                depth += 1
                opened = opened or char == "{"
            elif char in "})]":
                depth -= 1
        if depth <= 0 and (opened or code.rstrip().endswith((";", ","))):
            return number
        if depth <= 0 and not opened and number > start and not code.strip():
            return number - 1  # a statement without braces or a semicolon: it ends at a blank line
    return start if not opened else min(len(lines), start + MAX_BLOCK_LINES)


def symbols_of(path: str, text: str, tree: ast.Module | None = None) -> list[Symbol]:
    """The file's definitions, in the order they appear."""
    if path.endswith(".py"):
        tree = tree or parse_python(text)
        if tree is not None:
            return python_symbols(path, tree)
    return regex_symbols(path, text) if PurePosixPath(path).suffix in CODE_SUFFIXES else []


def innermost(symbols: list[Symbol], line: int) -> Symbol | None:
    """The smallest function, method or class containing the line (a module-level line has none)."""
    holders = [s for s in symbols if s.contains(line) and s.kind != "variable"]
    return min(holders, key=lambda s: s.size) if holders else None
