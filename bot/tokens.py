"""Token estimates for prompt budgets.

No tokenizer is downloaded (the bot runs offline, against whichever model the user pulled), so counts
are estimates: one token per 3 UTF-8 bytes, rounded up. BPE tokenizers of current code models
(Qwen2.5, Llama 3, DeepSeek-Coder) average about 3.5-4.5 bytes per token on English and source code,
so this over-counts by roughly 15-30%: a prompt the estimate accepts fits the real context window.
Ollama's own `prompt_eval_count` is what gets recorded after a call; this is only for deciding
beforehand what fits.
"""

from __future__ import annotations

import math

BYTES_PER_TOKEN = 3
# Chat templates wrap every message in role markers (`<|im_start|>user\n ... <|im_end|>\n`).
MESSAGE_OVERHEAD_TOKENS = 8


def count_tokens(text: str) -> int:
    """A conservative (high) estimate of the tokens `text` takes."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def count_message_tokens(messages: list[dict[str, str]]) -> int:
    """Estimated prompt tokens of a chat request, template overhead included."""
    return sum(count_tokens(m.get("content", "")) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def truncate_to_tokens(text: str, max_tokens: int, *, keep: str = "middle") -> str:
    """Cut `text` to about `max_tokens`, saying how much was left out.

    keep="head" keeps the start, "tail" the end, "middle" the start and the end (the middle goes):
    diffs and test output carry most of their meaning at both ends.
    """
    if count_tokens(text) <= max_tokens:
        return text
    lines = text.splitlines(keepends=True)
    budget = max(0, max_tokens - 24) * BYTES_PER_TOKEN  # room for the marker line

    def take(seq: list[str], limit: int) -> list[str]:
        kept, used = [], 0
        for line in seq:
            size = len(line.encode("utf-8"))
            if used + size > limit:
                break
            kept.append(line)
            used += size
        return kept

    if keep == "head":
        head, tail = take(lines, budget), []
    elif keep == "tail":
        head, tail = [], take(lines[::-1], budget)[::-1]
    elif keep == "middle":
        head = take(lines, budget // 2)
        tail = take(lines[len(head) :][::-1], budget - sum(len(s.encode("utf-8")) for s in head))[::-1]
    else:
        raise ValueError(f"keep must be 'head', 'tail' or 'middle', not {keep!r}")
    if not head and not tail:  # one enormous line (minified code, a data blob): cut characters
        first = budget if keep == "head" else budget // 2 if keep == "middle" else 0
        last = budget - first
        cut = len(text) - first - last
        return f"{text[:first]}\n[... {cut} characters cut to fit the context window ...]\n{text[len(text) - last:]}"
    omitted = len(lines) - len(head) - len(tail)
    marker = f"[... {omitted} lines cut to fit the context window ...]\n"
    if head and not head[-1].endswith("\n"):
        head[-1] += "\n"
    return "".join(head) + marker + "".join(tail)
