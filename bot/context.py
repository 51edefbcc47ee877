"""The generator's view of the repository, within a token budget.

A `RepoIndex` is built once per job (file texts, BM25 over code-aware tokens, top-level definitions)
and refreshed cheaply after each iteration. `build_generator_context` fills the budget in priority
order: files the task names, files in failing tracebacks, the previous attempt, lexical search hits,
and a compact repository map. Each part has a share of the budget; what a part leaves unused passes
to the next, and the total never exceeds the budget. Large files are cut around the relevant lines.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import BaseModel
from rank_bm25 import BM25Okapi

from bot.edits import UnsafePathError, normalize_rel_path, safe_path
from bot.records import IterationRecord, Task
from bot.tokens import count_tokens, truncate_to_tokens
from bot.workspace import GitError, run_git
from sandbox.reports import CheckReport

# --- prompt pieces -------------------------------------------------------------------------------


class ContextSection(BaseModel):
    title: str
    body: str
    tokens: int

    @classmethod
    def make(cls, title: str, body: str) -> ContextSection:
        return cls(title=title, body=body, tokens=section_tokens(title, body))

    def render(self) -> str:
        return f"## {self.title}\n{self.body}"


def section_tokens(title: str, body: str) -> int:
    # +1 covers the blank line that separates sections in PromptContext.render()
    return count_tokens(f"## {title}\n{body}") + 1


class PromptContext(BaseModel):
    sections: list[ContextSection]
    budget_tokens: int

    def render(self) -> str:
        return "\n\n".join(section.render() for section in self.sections)

    @property
    def tokens(self) -> int:
        return count_tokens(self.render())


# --- tokens for search ---------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOPWORDS = frozenset(
    "the a an and or not of to in on for is are be by it this that with as at from if else elif return def "
    "class import self none true false pass while try except finally raise yield lambda async await get set "
    "new use using when then should would could can do does make we you our your its into out".split()
)
_split_cache: dict[str, tuple[str, ...]] = {}


def _split_identifier(word: str) -> tuple[str, ...]:
    cached = _split_cache.get(word)
    if cached is not None:
        return cached
    parts = [p.lower() for chunk in word.split("_") for p in _CAMEL_PART.findall(chunk)]
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


# --- the index -----------------------------------------------------------------------------------


class _BM25(BM25Okapi):
    """Okapi BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)): always positive.

    rank-bm25's default idf is 0 for a term found in half the documents (and floored for commoner
    ones), so in a small repository a query can score every file 0.
    """

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
        self.average_idf = sum(self.idf.values()) / len(self.idf) if self.idf else 0.0


SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules", "__pycache__", "build", "dist",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs", "site-packages", ".idea",
    ".vscode", "target", ".next", ".cache", "htmlcov", ".gradle",
})
BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .svg .pdf .zip .gz .tgz .bz2 .xz .7z .tar .whl .egg .so .dylib "
    ".dll .exe .o .a .pyc .pyo .class .jar .war .woff .woff2 .ttf .otf .eot .mp3 .mp4 .wav .ogg .mov .avi "
    ".sqlite .sqlite3 .db .bin .npy .npz .pkl .pickle .parquet .feather .h5 .onnx .pt .safetensors .lock "
    ".map .min.js .DS_Store".split()
)
SKIP_NAMES = frozenset({"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "uv.lock", "Cargo.lock",
                        "go.sum", "composer.lock", "Gemfile.lock"})
FENCE_LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".tsx": "tsx", ".jsx": "jsx",
                   ".go": "go", ".rs": "rust", ".java": "java", ".rb": "ruby", ".sh": "bash", ".md": "markdown",
                   ".toml": "toml", ".yml": "yaml", ".yaml": "yaml", ".json": "json", ".c": "c", ".h": "c",
                   ".cpp": "cpp", ".cs": "csharp", ".kt": "kotlin", ".php": "php", ".html": "html", ".css": "css",
                   ".sql": "sql", ".ini": "ini", ".cfg": "ini"}
_OTHER_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:pub(?:\(\w+\))?\s+)?(?:async\s+)?"
    r"(?:function\*?|class|interface|type|enum|struct|trait|impl|fn|func|def|module|const|let)\s+"
    r"(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)


def _indexable(rel: str) -> bool:
    name = PurePosixPath(rel).name
    lowered = name.lower()
    return name not in SKIP_NAMES and not any(lowered.endswith(s) for s in BINARY_SUFFIXES)


def _python_definitions(text: str) -> list[str] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append(f"def {node.name}({_arg_names(node.args)})")
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            methods = [n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                       and (not n.name.startswith("_") or n.name == "__init__")]
            head = f"class {node.name}({bases})" if bases else f"class {node.name}"
            out.append(f"{head}: {', '.join(methods)}" if methods else head)
    return out


def _arg_names(args: ast.arguments) -> str:
    names = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    names += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        names.append("**" + args.kwarg.arg)
    return ", ".join(names)


def definitions_of(path: str, text: str) -> list[str]:
    """Top-level definitions: Python through ast, other languages through a simple regex."""
    if path.endswith(".py"):
        found = _python_definitions(text)
        if found is not None:
            return found
    if PurePosixPath(path).suffix not in FENCE_LANGUAGES or path.endswith((".md", ".json", ".yml", ".yaml")):
        return []
    names = []
    for match in _OTHER_DEFINITION.finditer(text):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names[:40]


@dataclass
class _Document:
    path: str
    text: str
    terms: list[str]
    definitions: list[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines = self.text.splitlines()


class RepoIndex:
    """Text, search terms and definitions of a repository's files; built once per job."""

    def __init__(self, root: Path, documents: dict[str, _Document], *, max_file_bytes: int):
        self.root = root
        self.max_file_bytes = max_file_bytes
        self._documents = documents
        self._bm25: _BM25 | None = None
        self._order: list[str] = []
        self._by_name: dict[str, list[str]] | None = None
        self._map_cache: dict[tuple[int, tuple[str, ...]], str] = {}

    # building ---------------------------------------------------------------------------------

    @classmethod
    def build(cls, root: Path, *, max_file_bytes: int = 200_000) -> RepoIndex:
        root = root.resolve()
        index = cls(root, {}, max_file_bytes=max_file_bytes)
        for rel in cls._list_files(root):
            if (document := index._load(rel)) is not None:
                index._documents[rel] = document
        return index

    @staticmethod
    def _list_files(root: Path) -> list[str]:
        """git's view when root is a worktree (tracked and untracked-but-not-ignored), else a walk."""
        try:
            tracked = run_git(["ls-files", "-z", "--cached"], root, timeout=60).split("\0")
            untracked = run_git(["ls-files", "-z", "--others", "--exclude-standard"], root, timeout=60).split("\0")
        except (GitError, OSError):
            pass
        else:
            # New files the job has not committed yet count too, minus an unignored virtualenv and the like.
            untracked = [p for p in untracked if not SKIP_DIRS.intersection(PurePosixPath(p).parts[:-1])]
            return sorted({p for p in tracked + untracked if p and _indexable(p)})
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            base = Path(dirpath).relative_to(root).as_posix()
            for name in filenames:
                rel = name if base == "." else f"{base}/{name}"
                if _indexable(rel):
                    found.append(rel)
        return sorted(found)

    def _load(self, rel: str) -> _Document | None:
        path = self.root / rel
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > self.max_file_bytes:
                return None
            raw = path.read_bytes()
        except OSError:
            return None
        if b"\0" in raw[:8192]:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        path_terms = code_tokens(rel.replace("/", " ").replace(".", " "))
        return _Document(rel, text, code_tokens(text) + path_terms * 3, definitions_of(rel, text))

    def refresh(self, changed_paths: list[str]) -> None:
        """Re-read the given files (or drop them when gone) after an iteration changed them."""
        for raw in changed_paths:
            try:
                rel = normalize_rel_path(raw)
            except UnsafePathError:
                continue
            document = self._load(rel) if _indexable(rel) else None
            if document is None:
                self._documents.pop(rel, None)
            else:
                self._documents[rel] = document
        self._bm25 = None
        self._by_name = None
        self._map_cache.clear()

    # reading ----------------------------------------------------------------------------------

    @property
    def paths(self) -> list[str]:
        return sorted(self._documents)

    def __contains__(self, path: object) -> bool:
        return path in self._documents

    def __len__(self) -> int:
        return len(self._documents)

    def text(self, path: str) -> str | None:
        document = self._documents.get(path)
        return document.text if document else None

    def lines(self, path: str) -> list[str]:
        document = self._documents.get(path)
        return document.lines if document else []

    def resolve_mention(self, mention: str) -> str | None:
        """The indexed path a task or traceback means: a path, a path suffix, a unique file name, a module."""
        cleaned = mention.strip().strip("`'\"()[]<>,;:").replace("\\", "/")
        cleaned = cleaned.removeprefix("./")
        if not cleaned:
            return None
        if cleaned in self._documents:
            return cleaned
        if any(marker in cleaned for marker in ("site-packages", "dist-packages", "/lib/python", "<frozen")):
            return None
        parts = [p for p in cleaned.split("/") if p]
        if cleaned.startswith("/") or len(parts) > 1:  # an absolute path in the sandbox, or a nested one
            for start in range(1, len(parts)):
                candidate = "/".join(parts[start:])
                if candidate in self._documents:
                    return candidate
        if len(parts) == 1:
            if self._by_name is None:
                self._by_name = {}
                for path in self._documents:
                    self._by_name.setdefault(PurePosixPath(path).name, []).append(path)
            same_name = self._by_name.get(parts[0], [])
            if len(same_name) == 1:
                return same_name[0]
            if "." in parts[0] and not same_name:  # a dotted module name: bot.records -> bot/records.py
                module = parts[0].replace(".", "/")
                for candidate in (f"{module}.py", f"{module}/__init__.py"):
                    if candidate in self._documents:
                        return candidate
        return None

    # search -----------------------------------------------------------------------------------

    def search(self, query: str, k: int = 8) -> list[tuple[str, float]]:
        """The k files that best match the query (BM25 over code-aware terms), best first."""
        terms = list(dict.fromkeys(code_tokens(query)))
        if not terms or not self._documents or k <= 0:
            return []
        self._ensure_bm25()
        assert self._bm25 is not None
        scores = self._bm25.get_scores(terms)
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:k]
        return [(self._order[i], round(float(scores[i]), 4)) for i in ranked if scores[i] > 0]

    # map --------------------------------------------------------------------------------------

    def repo_map(self, max_tokens: int, *, prefer: Iterable[str] = ()) -> str:
        """Paths and top-level definitions, as detailed as `max_tokens` allows.

        Every directory starts as one line of file names; then, directories near the `prefer` paths
        first, each is upgraded to its files' signatures, or failing that to their definition names,
        while the map still fits. When not even the directory lines fit, the list is cut.
        """
        preferred = tuple(prefer)
        key = (max_tokens, preferred)
        if key in self._map_cache:
            return self._map_cache[key]
        if max_tokens <= 0 or not self._documents:
            return ""
        by_dir: dict[str, list[str]] = {}
        for path in sorted(self._documents):
            by_dir.setdefault(str(PurePosixPath(path).parent), []).append(path)
        near = [str(PurePosixPath(p).parent) for p in preferred]
        order = sorted(by_dir, key=lambda d: (near.index(d) if d in near else len(near), d))

        blocks = {d: f"{d}/: " + " ".join(PurePosixPath(p).name for p in by_dir[d]) for d in by_dir}
        used = sum(count_tokens(block) + 1 for block in blocks.values())
        if used > max_tokens:
            result = _cut_lines([blocks[d] for d in order], max_tokens, unit="directories")
        else:
            for directory in order:
                documents = [self._documents[p] for p in by_dir[directory]]
                detailed = "\n".join(d.path + "".join(f"\n  {x}" for x in d.definitions) for d in documents)
                names = "\n".join(
                    f"{d.path}: {', '.join(x.split('(')[0].split(':')[0] for x in d.definitions)}"
                    if d.definitions else d.path
                    for d in documents
                )
                current = count_tokens(blocks[directory]) + 1
                for richer in (detailed, names):
                    cost = count_tokens(richer) + 1
                    if used - current + cost <= max_tokens:
                        blocks[directory], used = richer, used - current + cost
                        break
            result = "\n".join(blocks[d] for d in sorted(blocks))
        self._map_cache[key] = result
        return result

    def term_weight(self, term: str) -> float:
        """How telling a term is (its BM25 idf): rare identifiers weigh more than words found everywhere."""
        self._ensure_bm25()
        if self._bm25 is None:
            return 0.0
        return max(0.0, float(self._bm25.idf.get(term, self._bm25.average_idf)))

    def _ensure_bm25(self) -> None:
        if self._bm25 is None and self._documents:
            self._order = sorted(self._documents)
            self._bm25 = _BM25([self._documents[p].terms or ["\0"] for p in self._order])


def _cut_lines(lines: list[str], max_tokens: int, *, unit: str) -> str:
    """As many whole lines as fit, and a line saying how many were left out."""
    kept: list[str] = []
    reserve = 12  # the closing marker
    used = 0
    for line in lines:
        cost = count_tokens(line + "\n")
        if used + cost > max_tokens - reserve:
            break
        kept.append(line)
        used += cost
    left = len(lines) - len(kept)
    if left:
        kept.append(f"... ({left} more {unit})")
    text = "\n".join(kept)
    return text if count_tokens(text) <= max_tokens else truncate_to_tokens(text, max_tokens, keep="head")


# --- excerpts ------------------------------------------------------------------------------------

EXCERPT_RADII = (60, 40, 25, 15, 10, 6, 3, 1, 0)
MAX_FOCUS_LINES = 8
MIN_PART_TOKENS = 40


def _fence_for(path: str, text: str) -> tuple[str, str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return fence, FENCE_LANGUAGES.get(PurePosixPath(path).suffix, "")


def whole_file_block(path: str, text: str) -> str:
    fence, language = _fence_for(path, text)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"### {path}\n{fence}{language}\n{body}{fence}"


def _merge_windows(focus: list[int], radius: int, line_count: int) -> list[tuple[int, int]]:
    windows = sorted((max(1, f - radius), min(line_count, f + radius)) for f in focus)
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def excerpt_block(path: str, text: str, focus: list[int], max_tokens: int, *, note: str = "") -> str | None:
    """The whole file if it fits, else the lines around `focus` (1-based, most important first).

    Chunks are marked with their line numbers outside the code fences, so code stays copyable into
    search texts. None when not even one line fits.
    """
    whole = whole_file_block(path, text) + (f"\n{note}" if note else "")
    if count_tokens(whole) <= max_tokens:
        return whole
    lines = text.splitlines()
    if not lines or max_tokens < MIN_PART_TOKENS:
        return None
    fence, language = _fence_for(path, text)
    focus = [f for f in dict.fromkeys(focus) if 1 <= f <= len(lines)] or [1]
    focus = focus[:MAX_FOCUS_LINES]
    while focus:
        for radius in EXCERPT_RADII:
            chunks = [f"### {path} (excerpt; {len(lines)} lines in all)"]
            for start, end in _merge_windows(focus, radius, len(lines)):
                body = "\n".join(lines[start - 1 : end])
                chunks.append(f"lines {start}-{end}:\n{fence}{language}\n{body}\n{fence}")
            if note:
                chunks.append(note)
            block = "\n".join(chunks)
            if count_tokens(block) <= max_tokens:
                return block
        focus = focus[: len(focus) // 2]
    cut = truncate_to_tokens(block, max_tokens, keep="head")
    return cut if count_tokens(cut) <= max_tokens else None


def lines_matching(lines: list[str], terms: dict[str, float], limit: int = MAX_FOCUS_LINES) -> list[int]:
    """1-based numbers of the lines whose terms weigh most (term -> weight, e.g. idf), best first."""
    scored = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        score = sum(terms.get(term, 0.0) for term in set(code_tokens(line)))
        if score > 0:
            scored.append((-score, number))
    scored.sort()
    return [number for _, number in scored[:limit]]


# --- failures ------------------------------------------------------------------------------------

_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_PATH_LINE = re.compile(r"(?:^|[\s(\[\"'])((?:[\w.\-]+/|/)*[\w.\-]+\.[A-Za-z0-9]+):(\d+)\b", re.MULTILINE)
MAX_FAILURE_FILES = 6
MAX_FAILING_TESTS_SHOWN = 8
TRACEBACK_LINES_SHOWN = 25


def failure_locations(index: RepoIndex, report: CheckReport | None) -> dict[str, list[int]]:
    """Indexed files named by failing tests and tracebacks, each with the lines involved (innermost first)."""
    found: dict[str, list[int]] = {}
    if report is None:
        return found

    def add(raw: str, line: int | None) -> None:
        path = index.resolve_mention(raw)
        if path is None:
            return
        lines = found.setdefault(path, [])
        if line and line not in lines:
            lines.insert(0, line)

    for check in report.failed_checks:
        for test in check.failing_tests:
            test_file, _, test_name = test.test_id.partition("::")
            if (path := index.resolve_mention(test_file)) is not None:
                function = test_name.split("::")[-1].split("[")[0]
                defined = [n for n, line in enumerate(index.lines(path), start=1)
                           if re.match(rf"\s*(?:async\s+)?def {re.escape(function)}\b", line)] if function else []
                add(path, defined[0] if defined else None)
            for text in (test.traceback, test.message):
                for match in _PY_FRAME.finditer(text):
                    add(match.group(1), int(match.group(2)))
                for match in _PATH_LINE.finditer(text):
                    add(match.group(1), int(match.group(2)))
        if not check.failing_tests:
            for match in _PATH_LINE.finditer(check.output):
                add(match.group(1), int(match.group(2)))
            for match in _PY_FRAME.finditer(check.output):
                add(match.group(1), int(match.group(2)))
    return dict(list(found.items())[:MAX_FAILURE_FILES])


def report_text(report: CheckReport) -> str:
    """The report's own summary() when it has one, else a compact account of what failed."""
    summary = getattr(report, "summary", None)
    if callable(summary):
        return str(summary())
    out = [f"Pass rate {report.pass_rate:.0%}" + (f" ({report.pass_rate_reason})" if report.pass_rate_reason else "")
           + "."]
    for check in report.checks:
        counts = ""
        if check.tests is not None:
            t = check.tests
            counts = f": {t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped"
        exit_code = f", exit {check.exit_code}" if check.exit_code is not None else ""
        optional = "" if check.required else " (optional)"
        out.append(f"- {check.name}{optional}: {check.status.value}{exit_code}{counts}")
        if check not in report.failed_checks:
            continue
        for test in check.failing_tests[:MAX_FAILING_TESTS_SHOWN]:
            out.append(f"  FAILED {test.test_id}" + (f": {test.message}" if test.message else ""))
            if test.traceback:
                tb = test.traceback.strip().splitlines()[-TRACEBACK_LINES_SHOWN:]
                out.extend(f"    {line}" for line in tb)
        if len(check.failing_tests) > MAX_FAILING_TESTS_SHOWN:
            out.append(f"  ... and {len(check.failing_tests) - MAX_FAILING_TESTS_SHOWN} more failing tests")
        if not check.failing_tests and check.output.strip():
            tail = check.output.strip().splitlines()[-TRACEBACK_LINES_SHOWN:]
            out.extend(f"    {line}" for line in tail)
    return "\n".join(out)


# --- the generator's context ---------------------------------------------------------------------

SHARES = {"task": 0.35, "failures": 0.20, "previous": 0.20, "search": 0.15, "map": 0.10}
SEARCH_HITS = 8
_MENTION = re.compile(r"[\w./\\-]*[\w-]\.[A-Za-z][\w]*|[\w./-]+/[\w.-]+")


def mentioned_paths(index: RepoIndex, task: Task) -> list[str]:
    """Paths the task names (task.files first), as indexed paths or, when not indexed, as given."""
    paths: list[str] = []
    for raw in task.files:
        resolved = index.resolve_mention(raw)
        try:
            paths.append(resolved or normalize_rel_path(raw.strip()))
        except UnsafePathError:
            continue
    for match in _MENTION.finditer(task.text):
        resolved = index.resolve_mention(match.group(0))
        if resolved:
            paths.append(resolved)
    return list(dict.fromkeys(paths))


def _file_section(
    index: RepoIndex, files: dict[str, list[int]], allowance: int, title: str, extra_terms: dict[str, float]
) -> ContextSection | None:
    """Files with their focus lines, whole when they fit, cut around the focus lines when not."""
    if not files:
        return None
    available = allowance - section_tokens(title, "")
    blocks: dict[str, str] = {}
    # Small files first, so what they leave goes to the large ones.
    entries = []
    for path, focus in files.items():
        text = index.text(path)
        if text is None:
            text = _read_unindexed(index.root, path)
        entries.append((path, text, focus))
    entries.sort(key=lambda e: len(e[1]) if e[1] is not None else -1)
    for position, (path, text, focus) in enumerate(entries):
        if text is None:
            block = f"### {path}\n(This file does not exist yet.)"
            blocks[path] = block
            available -= count_tokens(block) + 1
            continue
        share = available // (len(entries) - position)
        lines = text.splitlines()
        focus = focus + [n for n in lines_matching(lines, extra_terms) if n not in focus]
        block = excerpt_block(path, text, focus, share)
        if block is not None:
            blocks[path] = block
            available -= count_tokens(block) + 1
    if not blocks:
        return None
    ordered = [blocks[path] for path in files if path in blocks]
    return ContextSection.make(title, "\n\n".join(ordered))


def _read_unindexed(root: Path, rel: str) -> str | None:
    try:
        path = safe_path(root, rel)
        if path.is_file() and path.stat().st_size <= 2_000_000:
            return path.read_text(encoding="utf-8", errors="replace")
    except (UnsafePathError, OSError):
        pass
    return None


def _previous_section(previous: IterationRecord, allowance: int) -> ContextSection | None:
    title = f"Your previous attempt (iteration {previous.number}): {previous.status.value}"
    problems: list[str] = []
    if previous.apply_error:
        problems.append(f"Its edits could not be applied:\n{previous.apply_error}")
    if previous.policy is not None and previous.policy.violations:
        problems.append("It broke the repository's policy:\n" + "\n".join(f"- {v}" for v in previous.policy.violations))
    if previous.error:
        problems.append(f"Error: {previous.error}")
    if previous.check_report is not None:
        problems.append("Checks on that attempt:\n" + report_text(previous.check_report))
    if previous.reward is not None and previous.reward.reasons:
        problems.append("Why it was not approved:\n" + "\n".join(f"- {r}" for r in previous.reward.reasons))
    available = allowance - section_tokens(title, "")
    if available < MIN_PART_TOKENS or (not problems and not previous.diff.strip()):
        return None
    parts = []
    problem_text = "\n\n".join(problems)
    if problem_text:
        limit = available if not previous.diff.strip() else int(available * 0.6)
        problem_text = truncate_to_tokens(problem_text, limit, keep="middle")
        parts.append(problem_text)
        available -= count_tokens(problem_text) + 1
    if previous.diff.strip() and available >= MIN_PART_TOKENS:
        fence = "```"
        while fence in previous.diff:
            fence += "`"
        wrapper = f"Its diff:\n{fence}diff\n\n{fence}"
        diff = truncate_to_tokens(previous.diff.strip("\n"), available - count_tokens(wrapper) - 1, keep="middle")
        parts.append(f"Its diff:\n{fence}diff\n{diff}\n{fence}")
    return ContextSection.make(title, "\n\n".join(parts)) if parts else None


def _search_section(index: RepoIndex, task: Task, allowance: int, shown: set[str], terms: dict[str, float]) -> (
    ContextSection | None
):
    title = "Related code (lexical search for the task's terms)"
    hits = [(p, s) for p, s in index.search(task.text, k=SEARCH_HITS + len(shown)) if p not in shown][:SEARCH_HITS]
    if not hits:
        return None
    available = allowance - section_tokens(title, "")
    blocks = []
    for position, (path, _score) in enumerate(hits):
        share = available // (len(hits) - position)
        lines = index.lines(path)
        focus = lines_matching(lines, terms, limit=3)
        block = excerpt_block(path, index.text(path) or "", focus, min(share, 1200))
        if block is None:
            continue
        blocks.append(block)
        available -= count_tokens(block) + 1
    return ContextSection.make(title, "\n\n".join(blocks)) if blocks else None


def build_generator_context(
    index: RepoIndex, task: Task, *, budget_tokens: int, previous: IterationRecord | None = None
) -> PromptContext:
    """What the generator sees of the repository, in priority order, never above `budget_tokens`."""
    terms = {t: index.term_weight(t) for t in code_tokens(task.text) if len(t) > 2}
    named = mentioned_paths(index, task)
    failures = failure_locations(index, previous.check_report if previous else None)
    task_files = {path: list(failures.get(path, [])) for path in named}
    failure_files = {path: lines for path, lines in failures.items() if path not in task_files}
    has_previous = previous is not None and bool(
        previous.diff.strip() or previous.apply_error or previous.check_report or previous.error
        or (previous.policy and previous.policy.violations)
    )
    present = {
        "task": bool(task_files),
        "failures": bool(failure_files),
        "previous": has_previous,
        "search": len(index) > 0,
        "map": len(index) > 0,
    }
    total_share = sum(share for name, share in SHARES.items() if present[name]) or 1.0

    sections: list[ContextSection] = []
    carry = 0
    remaining = budget_tokens

    def allowance(name: str) -> int:
        return min(remaining, int(budget_tokens * SHARES[name] / total_share) + carry)

    def take(name: str, section: ContextSection | None, allowed: int) -> None:
        nonlocal carry, remaining
        used = 0
        if section is not None and section.tokens <= allowed:
            sections.append(section)
            used = section.tokens
        carry = allowed - used
        remaining -= used

    if present["task"]:
        allowed = allowance("task")
        take("task", _file_section(index, task_files, allowed, "Files named in the task", terms), allowed)
    if present["failures"]:
        allowed = allowance("failures")
        take("failures", _file_section(index, failure_files, allowed, "Files in the failing tests' tracebacks",
                                       terms), allowed)
    if present["previous"] and previous is not None:
        allowed = allowance("previous")
        take("previous", _previous_section(previous, allowed), allowed)
    shown = set(task_files) | set(failure_files)
    if present["search"]:
        allowed = allowance("search")
        take("search", _search_section(index, task, allowed, shown, terms), allowed)
    if present["map"]:
        allowed = remaining  # the map takes whatever is left
        title = "Repository map (files and top-level definitions)"
        body = index.repo_map(allowed - section_tokens(title, ""), prefer=sorted(shown))
        take("map", ContextSection.make(title, body) if body else None, allowed)

    return _fit(PromptContext(sections=sections, budget_tokens=budget_tokens))


def _fit(context: PromptContext) -> PromptContext:
    """Guarantee the budget whatever the token counter does: cut the last sections until it fits."""
    while context.sections and context.tokens > context.budget_tokens:
        last = context.sections[-1]
        overflow = context.tokens - context.budget_tokens
        target = count_tokens(last.body) - overflow - 8
        if target < MIN_PART_TOKENS:
            context.sections.pop()
            continue
        context.sections[-1] = ContextSection.make(last.title, truncate_to_tokens(last.body, target, keep="head"))
    return context
