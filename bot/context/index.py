"""The repository index: file texts, BM25 search over code terms, top-level definitions, the repo map.

Built once per job from the worktree (git's file list when it is one, else a directory walk).
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rank_bm25 import BM25Okapi

from bot.context.symbols import Symbol, parse_python, symbols_of
from bot.context.terms import code_tokens
from bot.edits import UnsafePathError, normalize_rel_path
from bot.llm.tokens import count_tokens, truncate_to_tokens
from bot.workspace import GitError, run_git


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


def _python_definitions(tree: ast.Module) -> list[str]:
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


def definitions_of(path: str, text: str, tree: ast.Module | None = None) -> list[str]:
    """Top-level definitions: Python through ast, other languages through a simple regex."""
    if path.endswith(".py"):
        tree = tree or parse_python(text)
        if tree is not None:
            return _python_definitions(tree)
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
    symbols: list[Symbol]
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
        self._symbols_by_name: dict[str, list[Symbol]] | None = None
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
        tree = parse_python(text) if rel.endswith(".py") else None  # parsed once, for both lists
        return _Document(rel, text, code_tokens(text) + path_terms * 3, definitions_of(rel, text, tree),
                         symbols_of(rel, text, tree))

    def refresh(self, changed_paths: list[str]) -> None:
        """Re-read the given files (or drop them when gone) after the caller changed them in place.

        The cycle does not call this: its attempts all start from the base, so its index stays the base's.
        """
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
        self._symbols_by_name = None
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

    def symbols(self, path: str) -> list[Symbol]:
        """The file's functions, methods, classes and top-level assignments (symbols.py)."""
        document = self._documents.get(path)
        return document.symbols if document else []

    def symbols_named(self, name: str) -> list[Symbol]:
        """Every definition of `name` in the repository, in path order."""
        if self._symbols_by_name is None:
            self._symbols_by_name = {}
            for path in sorted(self._documents):
                for symbol in self._documents[path].symbols:
                    self._symbols_by_name.setdefault(symbol.name, []).append(symbol)
        return self._symbols_by_name.get(name, [])

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
