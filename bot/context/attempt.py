"""The attempt's part of the generator's context: what changes from one attempt to the next.

The task's part (budget.py `build_generator_context` without a previous attempt) is built once per
task at a fixed budget, so it is byte-identical in every prompt of an episode and a server's prompt
cache reuses it. This part comes after it and holds what the previous attempt left to learn from:

- the previous attempt: why it failed (edits that did not apply, policy, check output) and its diff;
- the definitions its failing tests' tracebacks name (localize.py `failure_references`), whole or cut
  around the lines the frames point at, unless the task's part already shows their file whole;
- the traceback files the task's part does not show, cut around the failing lines.

Each has a share of this part's budget; what one leaves passes to the next.
"""

from __future__ import annotations

from bot.context.budget import ContextSection, PromptContext, _file_section, _fit, _previous_section, section_tokens
from bot.context.excerpts import whole_file_block
from bot.context.index import RepoIndex
from bot.context.localize import FAILURE, Located, failure_references, located_body
from bot.context.symbols import innermost
from bot.context.terms import code_tokens
from bot.records import IterationRecord, Task

DEFINITIONS_TITLE = "Code the failing tests' tracebacks point at"
FILES_TITLE = "Files in the failing tests' tracebacks"
ATTEMPT_SHARES = {"previous": 0.45, "definitions": 0.35, "files": 0.20}


def failure_definitions(index: RepoIndex, previous: IterationRecord, shown: str) -> tuple[list[Located], dict[str, list[int]]]:
    """(the definitions the failures point at, innermost frame first; the lines they point at per file
    that holds no such definition). Files `shown` whole in the task's part are left out of both."""
    located: dict[tuple[str, int], Located] = {}
    loose: dict[str, list[int]] = {}
    for order, (path, line) in enumerate(failure_references(index, previous.check_report)):
        text = index.text(path)
        if text is None or whole_file_block(path, text) in shown:
            continue
        symbol = innermost(index.symbols(path), line)
        if symbol is None:
            loose.setdefault(path, []).append(line)
            continue
        key = (symbol.path, symbol.start)
        if key in located:
            located[key] = Located(symbol, located[key].rank, located[key].focus + (line,))
        elif not any(s.symbol.path == symbol.path and s.symbol.start <= symbol.end and symbol.start <= s.symbol.end
                     for s in located.values()):  # none inside another
            located[key] = Located(symbol, (FAILURE, order), (line,))
    return list(located.values()), loose


def build_attempt_context(
    index: RepoIndex, task: Task, previous: IterationRecord, *, budget_tokens: int, shown: str
) -> PromptContext:
    """What the next attempt needs from `previous`, within `budget_tokens` (bot.llm.tokens estimates).
    `shown` is the rendered task's part, whose files are not shown again."""
    terms = {t: index.term_weight(t) for t in code_tokens(task.text) if len(t) > 2}
    located, loose = failure_definitions(index, previous, shown)
    sections: list[ContextSection] = []
    carry, remaining = 0, budget_tokens

    def take(share: str, make) -> None:
        nonlocal carry, remaining
        allowed = min(remaining, int(budget_tokens * ATTEMPT_SHARES[share]) + carry)
        section = make(allowed)
        used = section.tokens if section is not None and section.tokens <= allowed else 0
        if used:
            sections.append(section)
        carry, remaining = allowed - used, remaining - used

    take("previous", lambda allowed: _previous_section(previous, allowed))
    if located:
        def definitions(allowed: int) -> ContextSection | None:
            body = located_body(index, located, allowed - section_tokens(DEFINITIONS_TITLE, ""), terms)
            return ContextSection.make(DEFINITIONS_TITLE, body) if body else None

        take("definitions", definitions)
    if loose:
        take("files", lambda allowed: _file_section(index, loose, allowed, FILES_TITLE, terms))
    return _fit(PromptContext(sections=sections, budget_tokens=budget_tokens))
