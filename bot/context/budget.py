"""The generator's context: parts in priority order, each with a share of the token budget.

Parts: the definitions the task is about (localize.py), files the task names, files in failing
tracebacks, the previous attempt, lexical search hits, and a compact repository map. What a part
leaves unused passes to the next, and the total never exceeds the budget.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bot.context.excerpts import MIN_PART_TOKENS, excerpt_block, lines_matching, whole_file_block
from bot.context.index import RepoIndex
from bot.context.localize import SECTION_TITLE, locate, located_body
from bot.context.terms import code_tokens
from bot.context.tracebacks import failure_locations, report_text
from bot.edits import UnsafePathError, normalize_rel_path, safe_path
from bot.records import IterationRecord, Task
from bot.llm.tokens import count_tokens, truncate_to_tokens


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


SHARES = {"located": 0.30, "task": 0.35, "failures": 0.20, "previous": 0.20, "search": 0.15, "map": 0.10}
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


def _shown_whole(index: RepoIndex, parts: dict[str, dict[str, list[int]]], budget_tokens: int) -> frozenset[str]:
    """The files a file section ({part: files}) will surely show whole: those within an even split of
    its share. Their definitions need not be shown again."""
    whole = set()
    for part, files in parts.items():
        even_split = int(budget_tokens * SHARES[part] / sum(SHARES.values())) // max(1, len(files)) - 16
        for path in files:
            text = index.text(path)
            if text is not None and count_tokens(whole_file_block(path, text)) <= even_split:
                whole.add(path)
    return frozenset(whole)


def build_generator_context(
    index: RepoIndex, task: Task, *, budget_tokens: int, previous: IterationRecord | None = None,
    locate_code: bool = True,
) -> PromptContext:
    """What the generator sees of the repository, in priority order, never above `budget_tokens`.

    `locate_code=False` leaves out the definitions the task is about (to measure what they add)."""
    terms = {t: index.term_weight(t) for t in code_tokens(task.text) if len(t) > 2}
    named = mentioned_paths(index, task)
    report = previous.check_report if previous else None
    failures = failure_locations(index, report)
    task_files = {path: list(failures.get(path, [])) for path in named}
    failure_files = {path: lines for path, lines in failures.items() if path not in task_files}
    has_previous = previous is not None and bool(
        previous.diff.strip() or previous.apply_error or previous.check_report or previous.error
        or (previous.policy and previous.policy.violations)
    )
    located = locate(index, task, report, skip_paths=_shown_whole(
        index, {"task": task_files, "failures": failure_files}, budget_tokens)) if locate_code else []
    present = {
        "located": bool(located),
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

    if present["located"]:
        allowed = allowance("located")
        body = located_body(index, located, allowed - section_tokens(SECTION_TITLE, ""), terms)
        take("located", ContextSection.make(SECTION_TITLE, body) if body else None, allowed)
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
