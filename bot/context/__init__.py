"""The generator's view of the repository, within a token budget.

A `RepoIndex` (index.py) is built once per job from the base commit: every attempt starts from the base
again, so the cycle never refreshes it (`RepoIndex.refresh` re-reads files for a caller that edits the
tree in place). `build_generator_context` (budget.py) fills the budget in priority order: the
definitions the task is about, whole (localize.py, over symbols.py), files the task names, files in
failing tracebacks (tracebacks.py), the previous attempt, lexical search hits, and a compact
repository map. Each part has a share of the budget; what a part leaves unused passes
to the next, and the total never exceeds the budget. Large files are cut around the relevant lines
(excerpts.py). Search runs on code-aware terms (terms.py).
"""

from bot.context.budget import (
    SHARES,
    ContextSection,
    PromptContext,
    build_generator_context,
    mentioned_paths,
    section_tokens,
)
from bot.context.excerpts import excerpt_block, lines_matching, whole_file_block
from bot.context.index import RepoIndex, definitions_of
from bot.context.terms import code_tokens
from bot.context.tracebacks import failure_locations, report_text

__all__ = [
    "SHARES",
    "ContextSection",
    "PromptContext",
    "RepoIndex",
    "build_generator_context",
    "code_tokens",
    "definitions_of",
    "excerpt_block",
    "failure_locations",
    "lines_matching",
    "mentioned_paths",
    "report_text",
    "section_tokens",
    "whole_file_block",
]
