"""Token estimates for prompt budgets, calibrated per model.

No tokenizer is downloaded (the bot runs offline, against whichever model the server has), so the
module-level functions estimate one token per 3 UTF-8 bytes, rounded up. That suits the large BPE
vocabularies of current code models (Qwen2.5, Llama 3: about 3.5-4.5 bytes per token), but small
vocabularies take more tokens: SmolLM2 took 2.4 bytes per token on a real project's prompt. So each
model gets a `TokenCounter` whose bytes-per-token ratio the LLM layer corrects from what the server
reports: its tokenizer where it has one (`/tokenize`), otherwise the prompt token count (`usage`,
`prompt_eval_count`) of earlier calls. The server's own counts are what gets recorded after a call.
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


def truncate_to_tokens(
    text: str, max_tokens: int, *, keep: str = "middle", bytes_per_token: float = BYTES_PER_TOKEN
) -> str:
    """Cut `text` to about `max_tokens`, saying how much was left out.

    keep="head" keeps the start, "tail" the end, "middle" the start and the end (the middle goes):
    diffs and test output carry most of their meaning at both ends.
    """
    if math.ceil(len(text.encode("utf-8")) / bytes_per_token) <= max_tokens:
        return text
    lines = text.splitlines(keepends=True)
    budget = int(max(0, max_tokens - 24) * bytes_per_token)  # room for the marker line

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


class TokenCounter:
    """Token counts for one model: the byte estimate at the model's own bytes-per-token ratio.

    The ratio starts at BYTES_PER_TOKEN and only moves down: `calibrate` takes the lowest ratio seen
    (the most tokens per byte), less a margin, so the estimate stays on the safe side of the window.
    """

    MARGIN = 0.95  # a new text may tokenize a little worse than the ones measured

    def __init__(self, bytes_per_token: float = BYTES_PER_TOKEN) -> None:
        self.bytes_per_token = bytes_per_token
        self.measured = False  # true once a server count corrected the ratio

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8")) / self.bytes_per_token)

    def count_messages(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m.get("content", "")) + MESSAGE_OVERHEAD_TOKENS for m in messages)

    def truncate(self, text: str, max_tokens: int, *, keep: str = "middle") -> str:
        return truncate_to_tokens(text, max_tokens, keep=keep, bytes_per_token=self.bytes_per_token)

    def calibrate(self, messages: list[dict[str, str]], server_tokens: int) -> None:
        """Correct the ratio from a count the server made of `messages` (template overhead included)."""
        size = sum(len(m.get("content", "").encode("utf-8")) for m in messages)
        content_tokens = server_tokens - MESSAGE_OVERHEAD_TOKENS * len(messages)
        if size < 200 or content_tokens <= 0:  # too little text to say anything about the tokenizer
            return
        ratio = size / content_tokens * self.MARGIN
        if ratio < self.bytes_per_token:
            self.bytes_per_token = max(1.0, ratio)
        self.measured = True

    def to_estimate(self, tokens: int) -> int:
        """`tokens` of this model as the module's estimate counts them (for code that uses count_tokens)."""
        return int(tokens * self.bytes_per_token / BYTES_PER_TOKEN)
