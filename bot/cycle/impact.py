"""Test impact: the tests an attempt can affect, run before the full suite (docs/test-impact.md).

A test file (Python) or a package (Go) is selected, each with the reasons it was chosen:

- the attempt adds or changes it;
- the task names it (its path, its file name, or a test function in it);
- one of its tests fails on the base and relates to the task (bot/cycle/baseline.py `relates_to_task`);
- it imports, directly or through the project's own modules, a module the attempt changed
  (bot/context/imports.py), or is named after one (`test_todo.py` for `ext/todo.py`);
- with `--doctest-modules` in the project's pytest settings, a changed module itself, for its doctests.

Go selects packages (the changed ones and those that import them), Rust the workspace's crates (the
changed ones and those that depend on them by path), and for jest and vitest the changed files are handed
to the runner, which finds their related tests itself (`--findRelatedTests`, `related`).

Where nothing is known — another language, a change to a file no import reaches (a setting, a data
file), nothing selected, or most of the suite selected anyway — there is no selection, and the full suite
runs at once, as before. A selection never approves anything: the full suite is the gate (gate.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Literal

from bot.cycle.baseline import Baseline, relates_to_task
from bot.verdict_records import SelectedTest, Selection
from bot.workspace import GitError, run_git

MOST_OF_THE_SUITE = 0.5  # a selection this share of the test files or more: the full suite at once
_DIFF_PATHS = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)
_PYTHON_TEST = re.compile(r"(^|/)(test_[^/]*|[^/]*_test|tests?)\.py$")
_NEUTRAL = re.compile(  # prose: no test imports it
    r"\.(md|rst|txt)$|(^|/)(docs?|changelog\.d|changes)/|(^|/)(CHANGES|CHANGELOG|AUTHORS|LICENSE)[^/]*$", re.I)
_TEST_FUNCTION = re.compile(r"\b(test_?\w+|Test\w+)\b")
_GENERIC_STEMS = {"__init__", "__main__", "util", "utils", "base", "core", "common", "misc", "main", "types",
                  "conftest", "helpers", "compat", "_version", "version", "setup"}
_PYTEST_SETTINGS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini")


def changed_paths(diff: str) -> list[str]:
    """Every path a diff adds, changes, renames or deletes."""
    return sorted({p for pair in _DIFF_PATHS.findall(diff) for p in pair})


def select_tests(root: Path, language: str, diff: str, task_text: str, baseline: Baseline | None) -> Selection:
    """The tests the attempt in `root` (its worktree, with the change applied) can affect."""
    changed = changed_paths(diff)
    if not changed:
        return Selection(full_suite_only="the attempt changes no file")
    if language == "python":
        return _python(root, changed, task_text, baseline)
    if language == "go":
        return _go(root, changed)
    if language == "rust":
        return _rust(root, changed)
    if language == "javascript":
        return _javascript(root, changed)
    return Selection(full_suite_only=f"no test selection is known for {language} projects yet")


class _Chooser:
    def __init__(self) -> None:
        self.chosen: dict[str, list[str]] = {}

    def add(self, path: str, reason: str) -> None:
        reasons = self.chosen.setdefault(path, [])
        if reason not in reasons:
            reasons.append(reason)

    def selection(self, out_of: int, unit: str = "test files") -> Selection:
        tests = [SelectedTest(path=p, reasons=r) for p, r in sorted(self.chosen.items())]
        if not tests:
            return Selection(out_of=out_of, full_suite_only="no test is known to depend on the change")
        if out_of and len(tests) >= MOST_OF_THE_SUITE * out_of:
            return Selection(tests=tests, out_of=out_of,
                             full_suite_only=f"the change reaches {len(tests)} of {out_of} {unit}")
        return Selection(tests=tests, out_of=out_of)


def _project_files(root: Path, *patterns: str) -> list[str]:
    try:
        out = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *patterns], root,
                      timeout=60)
    except (GitError, OSError):
        return sorted(p.relative_to(root).as_posix() for pattern in patterns for p in root.rglob(pattern))
    return sorted({p for p in out.split("\0") if p and (root / p).is_file()})


def _texts(root: Path, paths: list[str]) -> dict[str, str]:
    texts = {}
    for path in paths:
        try:
            texts[path] = (root / path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return texts


# --- Python ---------------------------------------------------------------------------------------------


def _python(root: Path, changed: list[str], task_text: str, baseline: Baseline | None) -> Selection:
    unknown = [p for p in changed if not p.endswith(".py") and not _NEUTRAL.search(p)]
    if unknown:
        return Selection(full_suite_only=f"the attempt changes {unknown[0]}, which no import leads to")
    texts = _texts(root, _project_files(root, "*.py"))
    tests = [p for p in texts if _PYTHON_TEST.search(p)]
    chooser = _Chooser()
    for path in changed:
        if path in texts and _PYTHON_TEST.search(path):
            chooser.add(path, "the attempt changes it")
    _named_in_task(chooser, task_text, tests, texts)
    if baseline is not None:
        for test_id in baseline.failing_tests:
            where = test_id.split("::")[0]
            if where in texts and relates_to_task(test_id, task_text):
                chooser.add(where, f"{test_id} fails on the base and relates to the task")
    modules = [p for p in changed if p.endswith(".py") and not _PYTHON_TEST.search(p)]
    if modules:
        from bot.context.imports import python_graph  # here: bot.context's package imports the records

        graph = python_graph(texts)
        _importers(chooser, graph, set(modules), set(tests))
        _named_after(chooser, modules, tests)
        if _doctest_modules(root):
            for module in modules:
                if module in texts:
                    chooser.add(module, "a changed module: its doctests (--doctest-modules)")
    return chooser.selection(len(tests))


def _named_in_task(chooser: _Chooser, task_text: str, tests: list[str], texts: dict[str, str]) -> None:
    for path in tests:
        name = PurePosixPath(path).name
        if path in task_text or re.search(rf"(?<![\w/]){re.escape(name)}\b", task_text) or \
                re.search(rf"\b{re.escape(PurePosixPath(path).stem)}\b", task_text) and name.startswith("test_"):
            chooser.add(path, "the task names it")
    functions = {f for f in _TEST_FUNCTION.findall(task_text) if len(f) > 5}
    for function in sorted(functions):
        pattern = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(function)}\b", re.M)
        for path in tests:
            if pattern.search(texts[path]):
                chooser.add(path, f"the task names {function}")


def _importers(chooser: _Chooser, graph, modules: set[str], tests: set[str]) -> None:
    for path, (origin, through) in graph.dependents(modules).items():
        if path in tests:
            chooser.add(path, f"imports {origin}" + (f" (through {through})" if through else ""))


def _named_after(chooser: _Chooser, modules: list[str], tests: list[str]) -> None:
    """`test_todo.py`, `test_ext_todo.py` or `todo_test.py` for a changed `todo.py` (a package: its directory)."""
    for module in modules:
        path = PurePosixPath(module)
        stem = path.parent.name if path.stem == "__init__" else path.stem
        stem = stem.lstrip("_")
        if len(stem) < 3 or stem in _GENERIC_STEMS:
            continue
        for test in tests:
            words = re.sub(r"^test_|_test$", "", PurePosixPath(test).stem).split("_")
            if stem in words or "_".join(words).endswith(stem):
                chooser.add(test, f"named after {module}")


def _doctest_modules(root: Path) -> bool:
    return any("--doctest-modules" in text for text in _texts(root, [n for n in _PYTEST_SETTINGS
                                                                   if (root / n).is_file()]).values())


# --- Go -------------------------------------------------------------------------------------------------


def _go(root: Path, changed: list[str]) -> Selection:
    from bot.context.imports import go_graph, go_module
    module = go_module((root / "go.mod").read_text(encoding="utf-8", errors="replace")) \
        if (root / "go.mod").is_file() else None
    if module is None:
        return Selection(full_suite_only="no go.mod: the packages' import paths are not known")
    texts = _texts(root, _project_files(root, "*.go"))
    with_tests = {str(PurePosixPath(p).parent) for p in texts if p.endswith("_test.go")}
    changed_packages: set[str] = set()
    for path in changed:
        parts = PurePosixPath(path).parts
        if path.endswith(".go"):
            changed_packages.add(str(PurePosixPath(path).parent))
        elif "testdata" in parts:  # read by the tests of the package that holds it
            at = parts.index("testdata")
            changed_packages.add(str(PurePosixPath(*parts[:at])) if at else ".")
        elif not _NEUTRAL.search(path):
            return Selection(full_suite_only=f"the attempt changes {path}, which no import leads to")
    chooser = _Chooser()
    for package in sorted(changed_packages & with_tests):
        chooser.add(_go_path(package), "the attempt changes it")
    for package, (origin, through) in go_graph(module, texts).dependents(changed_packages).items():
        if package in with_tests:
            chooser.add(_go_path(package), f"imports {_go_path(origin)}"
                        + (f" (through {_go_path(through)})" if through else ""))
    return chooser.selection(len(with_tests), "packages with tests")


def _go_path(package: str) -> str:
    return "." if package == "." else f"./{package}"


# --- Rust -----------------------------------------------------------------------------------------------


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _rust(root: Path, changed: list[str]) -> Selection:
    """A workspace's crates: the changed ones and those that depend on them by path."""
    from bot.context.imports import ImportGraph
    top = _toml(root / "Cargo.toml")
    members = [m for pattern in top.get("workspace", {}).get("members", []) for m in root.glob(pattern)
               if (m / "Cargo.toml").is_file()]
    crates: dict[str, str] = {}  # directory -> crate name
    manifests: dict[str, dict] = {}
    for directory in [*members, *([root] if "package" in top else [])]:
        manifest = _toml(directory / "Cargo.toml")
        name = manifest.get("package", {}).get("name")
        if isinstance(name, str):
            rel = directory.relative_to(root).as_posix()
            crates[rel], manifests[rel] = name, manifest
    if len(crates) < 2:
        return Selection(full_suite_only="a single crate: cargo test runs it whole")
    by_name = {name: rel for rel, name in crates.items()}
    shared = top.get("workspace", {}).get("dependencies", {})
    graph = ImportGraph()
    for rel, manifest in manifests.items():
        for section in ("dependencies", "dev-dependencies", "build-dependencies"):
            for dep, spec in manifest.get(section, {}).items():
                spec = shared.get(dep, spec) if isinstance(spec, dict) and spec.get("workspace") else spec
                name = spec.get("package", dep) if isinstance(spec, dict) else dep
                if isinstance(spec, dict) and "path" in spec and name in by_name:
                    graph.add(crates[rel], name)
    changed_crates = set()
    for path in changed:
        if path in ("Cargo.toml", "Cargo.lock"):
            return Selection(full_suite_only=f"the attempt changes the workspace's {path}")
        owner = max((rel for rel in crates if rel == "." or path.startswith(rel + "/")), key=len, default=None)
        if owner is not None:
            changed_crates.add(crates[owner])
        elif not _NEUTRAL.search(path):
            return Selection(full_suite_only=f"the attempt changes {path}, which belongs to no crate")
    chooser = _Chooser()
    for crate in sorted(changed_crates):
        chooser.add(crate, "the attempt changes it")
    for crate, (origin, through) in graph.dependents(changed_crates).items():
        chooser.add(crate, f"depends on {origin}" + (f" (through {through})" if through else ""))
    return chooser.selection(len(crates), "crates")


# --- JavaScript -----------------------------------------------------------------------------------------

_JS_SOURCE = re.compile(r"\.[cm]?[jt]sx?$")


def _javascript(root: Path, changed: list[str]) -> Selection:
    """jest and vitest find the tests related to changed files themselves: hand them the files."""
    try:
        package = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return Selection(full_suite_only="no readable package.json")
    script = (package.get("scripts") or {}).get("test", "") if isinstance(package, dict) else ""
    script = script.strip() if isinstance(script, str) else ""
    if re.match(r"^(npx\s+)?jest(\s|$)", script) and "&&" not in script:
        runner: Literal["jest", "vitest"] = "jest"
    elif re.match(r"^(npx\s+)?vitest(\s+--?[\w-]+(=\S+)?)*$", script):
        runner = "vitest"
    else:
        return Selection(full_suite_only="the test script is neither jest nor vitest alone: no related tests known")
    chooser = _Chooser()
    for path in changed:
        if _JS_SOURCE.search(path):
            if (root / path).is_file():
                chooser.add(path, f"changed by the attempt: {runner} runs the tests related to it")
        elif not _NEUTRAL.search(path):
            return Selection(full_suite_only=f"the attempt changes {path}, which no import leads to")
    selection = chooser.selection(0)
    return selection.model_copy(update={"related": runner})
