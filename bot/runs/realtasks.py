"""Real tasks from real history: a bug-fix commit of an open-source project becomes a task with a known answer.

The task's repository is the commit's parent (the base); its text is the commit message (title and
body, trailers dropped); the gold answer is the fix's source changes, and the fix's test changes are
the hidden tests. The base lines the gold fix changes are recorded: a generator can only write an
exact search/replace edit for lines its prompt shows verbatim.

A list of such commits lives in a JSON file (bundle, branch, commit, title); the repositories are
git bundles, cloned on demand.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, TypeAdapter

from bot.config import Settings
from bot.context import PromptContext, RepoIndex, build_generator_context
from bot.path_kinds import is_test_path
from bot.records import Task
from bot.roles.generator import Generator
from bot.llm.tokens import TokenCounter
from bot.workspace import GitError, run_git

_TRAILER = re.compile(r"^[A-Z][\w-]*-by:\s.*$", re.MULTILINE)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.MULTILINE)
DOC_NAMES = frozenset({"changes", "changelog", "history", "news", "authors", "license", "readme", "contributing"})
DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc"})
# Files a fix commit often touches only to bump the version: their lines are not what a fix must see.
RELEASE_FILES = frozenset({"setup.py", "setup.cfg", "pyproject.toml", "package.json", "__version__.py",
                           "_version.py", "version.py"})


class RealTaskSpec(BaseModel):
    """One entry of the list: which commit of which bundle."""

    bundle: str  # the bundle's file name without ".bundle", e.g. "tomli"
    branch: str
    commit: str
    title: str


class ChangedLine(BaseModel):
    """A base line the gold fix changes: removed or rewritten, or the line an insertion follows."""

    path: str
    line: int
    text: str
    kind: str  # "removed" or "anchor"


class RealTask(BaseModel):
    project: str
    commit: str
    base: str
    title: str
    body: str
    source_files: list[str]
    test_files: list[str]
    gold_diff: str
    test_diff: str
    changed_lines: list[ChangedLine]  # of the source files, release files (version bumps) left out

    def task(self) -> Task:
        return Task(title=self.title, body=self.body, source=f"commit:{self.project}@{self.commit[:12]}",
                    repo=self.project)


def is_doc_path(path: str) -> bool:
    pure = PurePosixPath(path)
    return (pure.suffix.lower() in DOC_SUFFIXES or pure.stem.lower() in DOC_NAMES
            or "docs" in pure.parts[:-1] or "doc" in pure.parts[:-1])


def split_message(message: str) -> tuple[str, str]:
    """The title and the body of a commit message, without trailers (Co-authored-by: and the like)."""
    title, _, body = message.strip().partition("\n")
    body = _TRAILER.sub("", body)
    return title.strip(), re.sub(r"\n{3,}", "\n\n", body).strip()


def make_real_task(repo: Path, commit: str, *, project: str = "") -> RealTask:
    """The task a bug-fix commit makes; the base is the commit's first parent."""
    commit = run_git(["rev-parse", f"{commit}^{{commit}}"], repo).strip()
    base = run_git(["rev-parse", f"{commit}^"], repo).strip()
    title, body = split_message(run_git(["log", "-1", "--format=%B", commit], repo))
    changed = [p for p in run_git(["diff", "--name-only", "-z", base, commit], repo).split("\0") if p]
    tests = [p for p in changed if is_test_path(p)]
    sources = [p for p in changed if p not in tests and not is_doc_path(p)]
    return RealTask(
        project=project or repo.name, commit=commit, base=base, title=title, body=body,
        source_files=sources, test_files=tests,
        gold_diff=_diff(repo, base, commit, sources), test_diff=_diff(repo, base, commit, tests),
        changed_lines=[line for path in sources if PurePosixPath(path).name not in RELEASE_FILES
                       for line in changed_base_lines(repo, base, commit, path)],
    )


def _diff(repo: Path, base: str, commit: str, paths: list[str]) -> str:
    return run_git(["diff", base, commit, "--", *paths], repo) if paths else ""


def changed_base_lines(repo: Path, base: str, commit: str, path: str) -> list[ChangedLine]:
    """The lines of `path` at base that the commit removes or rewrites; for a pure insertion, the
    nearest non-blank line above it (what a search text would anchor on). Blank lines are left out."""
    try:
        base_lines = run_git(["show", f"{base}:{path}"], repo).splitlines()
    except GitError:  # the fix creates the file: nothing at base to see
        return []
    found: dict[int, ChangedLine] = {}
    for match in _HUNK.finditer(run_git(["diff", "-U0", base, commit, "--", path], repo)):
        start, count = int(match.group(1)), int(match.group(2) if match.group(2) is not None else 1)
        if count:
            numbers = range(start, start + count)
            kind = "removed"
        else:  # inserted after line `start`
            above = [n for n in range(start, 0, -1) if base_lines[n - 1].strip()]
            numbers = range(above[0], above[0] + 1) if above else range(0)
            kind = "anchor"
        for number in numbers:
            text = base_lines[number - 1]
            if text.strip() and number not in found:
                found[number] = ChangedLine(path=path, line=number, text=text, kind=kind)
    return [found[n] for n in sorted(found)]


def load_specs(path: Path) -> list[RealTaskSpec]:
    return TypeAdapter(list[RealTaskSpec]).validate_json(path.read_bytes())


def clone_bundle(bundle_file: Path, branch: str, dest: Path) -> Path:
    """A clone of the bundle's branch at `dest` (reused when it is already there)."""
    if not (dest / ".git").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        run_git(["clone", "-q", "-b", branch, str(bundle_file), str(dest)], dest.parent)
    return dest


def checkout(repo: Path, commit: str) -> None:
    """Put the worktree at `commit` (detached), dropping whatever an earlier task left."""
    run_git(["checkout", "-q", "--force", "--detach", commit], repo)
    run_git(["clean", "-q", "-fdx"], repo)


def shown_lines(prompt: str) -> dict[str, set[str]]:
    """The code lines a rendered context shows verbatim, by file: every fenced line under a `### path` header."""
    shown: dict[str, set[str]] = {}
    path: str | None = None
    fence: str | None = None
    for line in prompt.splitlines():
        if fence is not None:
            if line == fence:
                fence = None
            elif path is not None:
                shown.setdefault(path, set()).add(line)
        elif line.startswith("### "):
            path = line[4:].split(" ", 1)[0].rstrip(":,")
        elif line.startswith("```"):
            fence = "`" * (len(line) - len(line.lstrip("`")))
    return shown


def missing_lines(task: RealTask, prompt: str) -> list[ChangedLine]:
    """The changed base lines a prompt does not show verbatim under their file's header."""
    shown = shown_lines(prompt)
    return [c for c in task.changed_lines if c.text not in shown.get(c.path, set())]


class SizeOnly:
    """Stands in for a model client where only the prompt's size is wanted: the estimate's token counter."""

    def for_role(self, role: str) -> SizeOnly:
        return self

    def counter(self, model: str) -> TokenCounter:
        return TokenCounter()


def first_attempt_budget(task: RealTask) -> int:
    """The budget of the task's part of the cycle's first prompt under the default settings: the
    `PromptBudget.task` that bot/cycle/steps.py builds the repository context with (the whole room less
    the attempt's and the guidance's shares)."""
    settings = Settings.model_construct()  # the defaults, not this machine's environment
    generator = Generator(SizeOnly(), model="any", num_ctx=settings.generator_num_ctx,  # type: ignore[arg-type]
                          max_output_tokens=settings.max_output_tokens, edit_format=settings.edit_format)
    return generator.budget(task.task()).task


def first_context(task: RealTask, root: Path, *, locate_code: bool = True) -> PromptContext:
    """The generator's context on the first attempt, for a worktree at the task's base."""
    return build_generator_context(RepoIndex.build(root), task.task(), budget_tokens=first_attempt_budget(task),
                                   locate_code=locate_code)
