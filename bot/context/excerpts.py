"""File excerpts for the prompt: a whole file when it fits, else the lines around its focus lines."""

from __future__ import annotations

from pathlib import PurePosixPath

from bot.context.index import FENCE_LANGUAGES
from bot.context.terms import code_tokens
from bot.llm.tokens import count_tokens, truncate_to_tokens

EXCERPT_RADII = (60, 40, 25, 15, 10, 6, 3, 1, 0)
MAX_FOCUS_LINES = 8
MIN_PART_TOKENS = 40


def fence_for(path: str, text: str) -> tuple[str, str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return fence, FENCE_LANGUAGES.get(PurePosixPath(path).suffix, "")


def whole_file_block(path: str, text: str) -> str:
    fence, language = fence_for(path, text)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"### {path}\n{fence}{language}\n{body}{fence}"


def merge_windows(focus: list[int], radius: int, line_count: int) -> list[tuple[int, int]]:
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
    fence, language = fence_for(path, text)
    focus = [f for f in dict.fromkeys(focus) if 1 <= f <= len(lines)] or [1]
    focus = focus[:MAX_FOCUS_LINES]
    while focus:
        for radius in EXCERPT_RADII:
            chunks = [f"### {path} (excerpt; {len(lines)} lines in all)"]
            for start, end in merge_windows(focus, radius, len(lines)):
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
        # in the line's order, not a set's: a float sum in hash order differs in its last bits between
        # processes (PYTHONHASHSEED), and that flipped ties between lines, so the excerpts shown changed
        score = sum(terms.get(term, 0.0) for term in dict.fromkeys(code_tokens(line)))
        if score > 0:
            scored.append((-score, number))
    scored.sort()
    return [number for _, number in scored[:limit]]
