"""The project's own import graph: which of its files a file depends on, for test impact (bot/cycle/impact.py).

Python: a file depends on the project modules it imports, and on the modules that define the names it
takes from them. A package's `__init__.py` often re-exports every submodule, so "imports the package"
would make every test depend on every module; a name taken from a package is followed to the module that
defines it instead (`from pkg import thing`, `pkg.thing`), and the `__init__.py` itself counts only for
its own code. A name that cannot be traced, or `from pkg import *`, counts the whole `__init__.py`
with everything it imports. Imports under `if TYPE_CHECKING:` never run and do not count; a string in a
test that names a module ("pkg.ext" handed to an extension loader, a mock.patch target) does. Tests
depend on the conftest.py files above them. A dependency made otherwise (a registry filled by
decorators, a plugin entry point) is not seen: the full suite, which always runs before approval, does.

Go: a package (a directory) depends on the module's packages its files import, its tests included.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import PurePosixPath

MAX_HOPS = 8  # re-exports followed from one name to its definition
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_tests?|conftest|tests?)\.py$")
_GO_MODULE = re.compile(r"^module\s+(\S+)", re.M)
_GO_IMPORTS = re.compile(r"^import\s*(?:\(([^)]*)\)|([^\n]*))", re.M)
_GO_PATH = re.compile(r'"([^"]+)"')


@dataclass
class ImportGraph:
    """File (or Go package) -> what it depends on. `follow`: dependencies whose own dependencies count too;
    `own`: dependencies whose own code counts, not what they import (a package's `__init__.py`)."""

    follow: dict[str, set[str]] = field(default_factory=dict)
    own: dict[str, set[str]] = field(default_factory=dict)

    def add(self, source: str, target: str, *, whole: bool = True) -> None:
        if target != source:
            (self.follow if whole else self.own).setdefault(source, set()).add(target)

    def dependents(self, changed: set[str]) -> dict[str, tuple[str, str | None]]:
        """Every node that depends on a changed one, directly or not: node -> (the changed node it reaches,
        the node it reaches it through, None when directly)."""
        reverse_follow: dict[str, set[str]] = {}
        reverse_own: dict[str, set[str]] = {}
        for edges, reverse in ((self.follow, reverse_follow), (self.own, reverse_own)):
            for source, targets in edges.items():
                for target in targets:
                    reverse.setdefault(target, set()).add(source)
        found: dict[str, tuple[str, str | None]] = {}
        queue: deque[str] = deque()
        for target in sorted(changed):
            for source in sorted(reverse_follow.get(target, set()) | reverse_own.get(target, set())):
                if source not in found and source not in changed:
                    found[source] = (target, None)
                    queue.append(source)
        while queue:
            node = queue.popleft()
            origin, _ = found[node]
            for source in sorted(reverse_follow.get(node, ())):
                if source not in found and source not in changed:
                    found[source] = (origin, node)
                    queue.append(source)
        return found


# --- Python ---------------------------------------------------------------------------------------------

def module_names(paths: list[str]) -> dict[str, str]:
    """Dotted module name -> file, for the project's Python files: by their packages (directories with an
    `__init__.py`), and by their path from the top (a `src/` layout's path without `src.`)."""
    files = set(paths)
    names: dict[str, str] = {}
    for path in sorted(paths, key=lambda p: (p.count("/"), p)):
        parts = list(PurePosixPath(path).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        first = len(PurePosixPath(path).parts) - 1  # the directories above the file
        while first > 0 and "/".join(PurePosixPath(path).parts[:first]) + "/__init__.py" in files:
            first -= 1
        for candidate in (parts[first:], parts, parts[1:] if parts[:1] == ["src"] else []):
            if candidate:
                names.setdefault(".".join(candidate), path)
    return names


@dataclass
class _Facts:
    """What a Python file says about imports, from one parse: its top-level names (defined in it, taken
    from a module, bound to a module, star-imported), every import in it, and the attributes it takes
    from each name (`name.attr`)."""

    defined: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # name -> what its statement reads
    taken: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # name -> (level, module, its name there)
    modules: dict[str, str] = field(default_factory=dict)  # name -> module (`import a.b as name`)
    stars: list[tuple[int, str]] = field(default_factory=list)
    imports: list[tuple[str, str | None]] = field(default_factory=list)  # (module, as) of `import module`
    from_imports: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # (level, module, name, as)
    attributes: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # name -> (attr, attr...) chains
    dotted: set[str] = field(default_factory=set)  # strings that may name a module: "pkg.ext", "pkg.mod.func"

    @classmethod
    def of(cls, text: str) -> _Facts:
        facts = cls()
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return facts
        for node in _top_level(tree.body):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        facts.stars.append((node.level, node.module or ""))
                    else:
                        facts.taken.setdefault(alias.asname or alias.name, (node.level, node.module or "", alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    facts.modules.setdefault(alias.asname or top, alias.name if alias.asname else top)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                facts.defined.setdefault(node.name, set()).update(_reads(node))
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    for name in _assigned(target):
                        facts.defined.setdefault(name, set()).update(_reads(node))
        inner: set[int] = set()  # an attribute inside a longer chain
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Attribute) and id(node) not in inner:
                chain = _chain(node, inner)
                if chain:
                    facts.attributes.setdefault(chain[0], set()).add(chain[1:])
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.match(node.value):
                facts.dotted.add(node.value)
            if isinstance(node, ast.Import):
                facts.imports.extend((alias.name, alias.asname) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                facts.from_imports.extend((node.level, node.module or "", a.name, a.asname) for a in node.names)
        return facts


_FACTS: dict[str, _Facts] = {}  # by the text's digest: a job's later attempts parse only what they changed
_FACTS_KEPT = 50_000


def _facts(text: str) -> _Facts:
    key = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()
    if key not in _FACTS:
        if len(_FACTS) >= _FACTS_KEPT:
            _FACTS.clear()
        _FACTS[key] = _Facts.of(text)
    return _FACTS[key]


def _assigned(target: ast.expr) -> list[str]:
    """The names an assignment binds (`a = `, `a, b = `), not the objects it changes (`a.b = `)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _assigned(element)]
    if isinstance(target, ast.Starred):
        return _assigned(target.value)
    return []


def _chain(node: ast.Attribute, inner: set[int]) -> tuple[str, ...] | None:
    """`a.b.c` as ("a", "b", "c"); None when it does not start with a name. Marks the inner attributes and
    the name."""
    attrs = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.append(current.attr)
        current = current.value
        inner.add(id(current))
    return (current.id, *reversed(attrs)) if isinstance(current, ast.Name) else None


def _reads(node: ast.stmt) -> set[tuple[str, ...]]:
    """The names a statement reads, each with the attributes it takes from it: ("utils", "backends")."""
    inner: set[int] = set()
    reads = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and id(child) not in inner and (chain := _chain(child, inner)):
            reads.add(chain)
    reads.update((child.id,) for child in ast.walk(node)
                 if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and id(child) not in inner)
    return reads


def _type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): imports for the type checker, never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node, as ast.walk, but for the bodies of `if TYPE_CHECKING:` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if _type_checking(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _top_level(body: list[ast.stmt]):
    """A module's statements, with those inside top-level `if` and `try` blocks (but type checking's)."""
    for node in body:
        if _type_checking(node):
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.If | ast.Try):
            yield from _top_level([*node.body, *node.orelse, *getattr(node, "finalbody", []),
                                   *(s for h in getattr(node, "handlers", []) for s in h.body)])
        else:
            yield node


def _is_package(path: str) -> bool:
    return path.endswith("__init__.py")


class _PythonFiles:
    def __init__(self, texts: dict[str, str]):
        self.facts = {path: _facts(text) for path, text in texts.items()}
        self.modules = module_names(list(texts))
        self.path_module: dict[str, str] = {}
        for name, path in self.modules.items():
            self.path_module.setdefault(path, name)
        self.found: dict[tuple[str, str], list[tuple[str, bool]]] = {}

    def absolute(self, path: str, level: int, module: str) -> str:
        """A relative import's module as an absolute name."""
        if not level:
            return module
        own = self.path_module.get(path, "")
        package = [p for p in (own if _is_package(path) else own.rpartition(".")[0]).split(".") if p]
        base = package[: len(package) - level + 1] if level > 1 else package
        return ".".join([*base, module] if module else base)

    def definition(self, module_path: str, name: str, hops: int = 0) -> list[tuple[str, bool]]:
        """Where `name` of a module comes from: [(file, whole)], whole=False for an `__init__.py`'s own code."""
        key = (module_path, name)
        if key not in self.found:
            self.found[key] = [(module_path, True)]  # a cycle of re-exports ends here
            self.found[key] = self._definition(module_path, name, hops)
        return self.found[key]

    def _definition(self, module_path: str, name: str, hops: int) -> list[tuple[str, bool]]:
        facts = self.facts[module_path]
        if hops > MAX_HOPS or (name in facts.defined and not _is_package(module_path)):
            return [(module_path, True)]  # its code may use anything the module imports
        if name in facts.defined:  # defined in a package's own code: that code, and what it reads
            edges = [(module_path, False)]
            for first, *rest in sorted(facts.defined[name]):
                if first != name and (first in facts.taken or first in facts.modules or first in facts.defined):
                    *through, (last, whole) = self.definition(module_path, first, hops + 1)
                    edges.extend(through)
                    if _is_package(last) and last != module_path and not whole and rest:
                        edges += [(last, False), *self.chain(last, tuple(rest))]  # `sub.attr...`
                    else:
                        edges.append((last, whole or _is_package(last)))
            return edges
        if name in facts.taken:
            level, module, original = facts.taken[name]
            source = self.absolute(module_path, level, module)
            return [(module_path, False), *self.from_import(source, original, hops + 1)]
        if name in facts.modules and (target := self.modules.get(facts.modules[name])):
            return [(module_path, False), (target, True)]
        for level, module in facts.stars:
            target = self.modules.get(self.absolute(module_path, level, module))
            if target is not None and target != module_path and self.exports(target, name):
                return [(module_path, False), *self.definition(target, name, hops + 1)]
        if _is_package(module_path):
            submodule = self.modules.get(f"{self.path_module.get(module_path, '')}.{name}")
            if submodule is not None:
                return [(module_path, False), (submodule, not _is_package(submodule))]
        return [(module_path, True)]

    def exports(self, module_path: str, name: str, depth: int = 0) -> bool:
        """Whether the module has `name` at its top, itself or through its own star imports."""
        facts = self.facts[module_path]
        if name in facts.defined or name in facts.taken or name in facts.modules:
            return True
        return depth < MAX_HOPS and any(
            (target := self.modules.get(self.absolute(module_path, level, module))) is not None
            and target != module_path and self.exports(target, name, depth + 1) for level, module in facts.stars)

    def from_import(self, module: str, name: str, hops: int = 0) -> list[tuple[str, bool]]:
        """`from module import name`: the submodule `module.name`, or where the module's `name` comes from."""
        submodule = self.modules.get(f"{module}.{name}")
        target = self.modules.get(module)
        if submodule is not None:
            edges = [(target, False)] if target else []
            return [*edges, (submodule, not _is_package(submodule))]
        if target is None:
            return []  # not the project's own
        return self.definition(target, name, hops)

    def edges_of(self, path: str) -> list[tuple[str, bool]]:
        facts = self.facts[path]
        edges: list[tuple[str, bool]] = []
        bound: dict[str, str] = {}  # local name -> package, for `local.attr` uses
        for dotted, asname in facts.imports:
            parts = dotted.split(".")
            for end in range(1, len(parts) + 1):  # `import a.b.c` runs a, a.b and a.b.c
                target = self.modules.get(".".join(parts[:end]))
                if target is not None:  # a.b.c's attributes are not traced when `a` is the name bound
                    whole = end == len(parts) and (not _is_package(target) or (end > 1 and not asname))
                    edges.append((target, whole))
            target = self.modules.get(dotted if asname else parts[0])
            if target is not None:
                bound[asname or parts[0]] = target
        for level, module, name, asname in facts.from_imports:
            module = self.absolute(path, level, module)
            if name == "*":
                if (target := self.modules.get(module)) is not None:
                    edges.append((target, True))
                continue
            found = self.from_import(module, name)
            edges.extend(found)
            if found and _is_package(found[-1][0]):
                bound[asname or name] = found[-1][0]
        # a test's strings naming a module: extensions it loads, importlib, mock.patch targets (the
        # project's own registries of names, an application's list of built-in extensions, are not followed)
        for dotted in facts.dotted if _TEST_FILE.search(path) else ():
            parts = dotted.split(".")
            for end in range(len(parts), 1, -1):
                if (target := self.modules.get(".".join(parts[:end]))) is not None:
                    edges.append((target, True))
                    edges += [(p, False) for n in range(1, end) if (p := self.modules.get(".".join(parts[:n])))]
                    break
        for local, target in bound.items():
            if not _is_package(target):
                continue
            # the attributes taken from a package; handing it on as a whole as well (into a doctest
            # namespace) is not followed: what the receiver uses, it names itself
            attributes = facts.attributes.get(local)
            if not attributes:
                edges.append((target, True))
            for chain in attributes or ():
                edges.extend(self.chain(target, chain))
        return edges

    def chain(self, package: str, attributes: tuple[str, ...]) -> list[tuple[str, bool]]:
        """`package.a.b.c`: through the subpackages the chain names, to where its name is defined."""
        edges: list[tuple[str, bool]] = []
        for at, attribute in enumerate(attributes):
            found = self.definition(package, attribute)
            *through, (last, whole) = found
            edges.extend(through)
            if _is_package(last) and last != package and not whole and at + 1 < len(attributes):
                edges.append((last, False))
                package = last  # a subpackage: on with the next attribute
                continue
            edges.append((last, whole or _is_package(last)))
            break
        return edges


def python_graph(texts: dict[str, str]) -> ImportGraph:
    """The import graph of the project's Python files (path -> source text)."""
    files = _PythonFiles({p: t for p, t in texts.items() if p.endswith(".py")})
    graph = ImportGraph()
    conftests = [p for p in files.facts if PurePosixPath(p).name == "conftest.py"]
    for path in files.facts:
        for target, whole in files.edges_of(path):
            graph.add(path, target, whole=whole)
        here = PurePosixPath(path).parent
        for conftest in conftests:
            folder = PurePosixPath(conftest).parent
            if folder == PurePosixPath(".") or folder == here or folder in here.parents:
                graph.add(path, conftest)
    return graph


# --- Go -------------------------------------------------------------------------------------------------


def go_module(go_mod: str) -> str | None:
    match = _GO_MODULE.search(go_mod)
    return match.group(1) if match else None


def go_graph(module: str, texts: dict[str, str]) -> ImportGraph:
    """Package directory -> the module's package directories its files (tests included) import."""
    graph = ImportGraph()
    for path, text in texts.items():
        if not path.endswith(".go"):
            continue
        package = str(PurePosixPath(path).parent)
        for block, single in _GO_IMPORTS.findall(text):
            for imported in _GO_PATH.findall(block or single):
                if imported == module or imported.startswith(module + "/"):
                    graph.add(package, imported.removeprefix(module).strip("/") or ".")
    return graph
