"""What the three roles share: prompt files, untrusted-text blocks, and fitting a prompt to its budget.

A prompt file (bot/roles/prompts/<role>.md) holds a system prompt and a user message, each after its
marker line (`<!-- system -->`, `<!-- user -->`), rendered with `string.Template` so that braces in
code never break rendering. The generator's prompt takes the parts that depend on the edit format
from that format (bot/edit_formats/) when it is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from bot.edit_formats import DEFAULT_EDIT_FORMAT, get_format
from bot.llm.client import ModelClient, parse_reply
from bot.records import GuidanceEntry, LLMCall, Task

T = TypeVar("T", bound=BaseModel)

SYSTEM_MARKER = "<!-- system -->"
USER_MARKER = "<!-- user -->"
SAFETY_TOKENS = 32  # slack between our estimate of a fitted prompt and the window

GUIDANCE_LABELS = {
    "agitator": "coach (after reviewing the attempt)",
    "human": "human",
    "review": "code review comment",
    "policy": "policy rule (hard limit)",
    "edit_error": "edit that could not be applied",
    "memory": "lesson from earlier runs on this repository",
    "baseline": "tests failing on the base commit, before any change",
}


@dataclass(frozen=True)
class PromptTemplate:
    role: str
    system: Template
    user: Template

    @classmethod
    def parse(cls, role: str, text: str) -> PromptTemplate:
        if text.count(SYSTEM_MARKER) != 1 or text.count(USER_MARKER) != 1:
            raise ValueError(f"prompt {role}: needs exactly one {SYSTEM_MARKER} and one {USER_MARKER} line")
        _, rest = text.split(SYSTEM_MARKER)
        system, user = rest.split(USER_MARKER)
        return cls(role, Template(system.strip()), Template(user.strip()))

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages; a missing value is a KeyError naming it."""
        return [
            {"role": "system", "content": self.system.substitute(values)},
            {"role": "user", "content": self.user.substitute(values)},
        ]


@cache
def load_prompt(role: str, edit_format: str = DEFAULT_EDIT_FORMAT) -> PromptTemplate:
    """The packaged prompt of a role (bot/roles/prompts/<role>.md), with the parts of `edit_format` in
    its edit-format slots (only the generator's prompt has any)."""
    text = (files("bot.roles") / "prompts" / f"{role}.md").read_text("utf-8")
    return PromptTemplate.parse(role, get_format(edit_format).assemble(text))


def defuse(text: str, tag: str) -> str:
    """Untrusted text for a <tag> block, with that block's own tags made inert so it cannot close the
    block early. Only that tag is touched: file contents must stay byte-exact for search/replace."""
    pattern = re.compile(rf"<(/?)\s*{re.escape(tag)}\s*>", re.IGNORECASE)
    return pattern.sub(lambda m: f"<{m.group(1)}\u200b{tag}>", text)


def render_task(task: Task) -> str:
    lines = [f"Title: {task.title.strip()}"]
    if task.source:
        lines.append(f"Source: {task.source}")
    if task.repo:
        lines.append(f"Repository: {task.repo}")
    if task.files:
        lines.append(f"Files named in the task: {', '.join(task.files)}")
    if task.body.strip():
        lines += ["", task.body.strip()]
    return defuse("\n".join(lines), "task")


def render_guidance(entries: list[GuidanceEntry]) -> str:
    """History of feedback, oldest first and newest last, each entry numbered and labelled."""
    if not entries:
        return "(none: this is the first attempt)"
    parts = []
    for number, entry in enumerate(entries, 1):
        label = GUIDANCE_LABELS.get(entry.source, entry.source)
        about = []
        if entry.author:
            about.append(f"by @{entry.author}")
        if entry.iteration is not None:
            about.append(f"on attempt {entry.iteration}")
        if entry.path:
            about.append(f"about {entry.path}" + (f" line {entry.line}" if entry.line else ""))
        newest = " (newest)" if number == len(entries) and len(entries) > 1 else ""
        header = f"[{number}] {label}{' ' + ', '.join(about) if about else ''}{newest}:"
        parts.append(f"{header}\n{entry.text.strip()}")
    return defuse("\n\n".join(parts), "guidance")


SCORE_STEPS = [round(step / 10, 1) for step in range(11)]  # a bounded score as the grammar allows it


def bounded_schema(model: type[BaseModel], *, max_items: int = 3, max_chars: int = 300) -> dict[str, Any]:
    """`model`'s JSON schema with what a grammar can enforce and a weak model otherwise breaks or
    overruns: a number between 0 and 1 is one of SCORE_STEPS (llama.cpp's grammars do not bound
    numbers), strings are at most `max_chars` long and lists at most `max_items` long, so a reply is
    never cut off at the token limit. The reply is still validated against `model` itself."""
    schema = model.model_json_schema()
    for prop in schema.get("properties", {}).values():
        if prop.get("type") == "number" and prop.get("minimum") == 0 and prop.get("maximum") == 1:
            prop.clear()
            prop["enum"] = SCORE_STEPS
        elif prop.get("type") == "string":
            prop["maxLength"] = max_chars
        elif prop.get("type") == "array" and prop.get("items", {}).get("type") == "string":
            prop["maxItems"] = max_items
            prop["items"]["maxLength"] = max_chars // 2
    return schema


class Role(Generic[T]):
    """One model role: a prompt file, an output schema, a model and its token budget.

    Prompts are measured with the model's own token counter (bot/llm/tokens.py), which the LLM layer
    calibrates from the server's counts; `prompt_for` asks the server to count first where it can.
    """

    name: str
    schema: type[T]
    constrained = True  # the reply is JSON the server constrains to `schema`

    def __init__(
        self,
        llm: ModelClient,
        *,
        model: str,
        num_ctx: int,
        max_output_tokens: int,
        temperature: float = 0.2,
        seed: int | None = None,
    ) -> None:
        self.llm = llm.for_role(self.name)
        self.model = model
        self.num_ctx = num_ctx
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.seed = seed
        self.prompt = self.prompt_template()
        self.counter = self.llm.counter(model)

    def prompt_template(self) -> PromptTemplate:
        return load_prompt(self.name)

    def parse(self, reply: str) -> T:
        """The reply's text as the role's output; pydantic's ValidationError when it does not fit."""
        return parse_reply(self.schema, reply)

    def fixed_tokens(self, values: dict[str, str], flexible: dict[str, str]) -> int:
        """Tokens of the prompt rendered with the `flexible` values empty."""
        return self.counter.count_messages(self.prompt.render(**values, **dict.fromkeys(flexible, "")))

    def room_beside(self, fixed: int) -> int:
        """Prompt tokens left beside `fixed` tokens once the reply is reserved."""
        return self.num_ctx - self.max_output_tokens - fixed - SAFETY_TOKENS

    def room_for(self, values: dict[str, str], flexible: dict[str, str]) -> int:
        """Prompt tokens left for the `flexible` values once the rest of the prompt is rendered."""
        return self.room_beside(self.fixed_tokens(values, flexible))

    async def prompt_for(self, values: dict[str, str], flexible: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
        """`fit`, after the server's tokenizer (where it has one) counted the whole prompt, so the cuts
        are made at this model's real bytes-per-token."""
        whole = self.prompt.render(**values, **{name: text for name, (text, _) in flexible.items()})
        await self.llm.count_prompt(self.model, whole)
        return self.fit(values, flexible)

    def fit(self, values: dict[str, str], flexible: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
        """Render the prompt, cutting the `flexible` values ({name: (text, keep)}) to fit the window.

        The room left is shared fairly: values that fit in an equal share stay whole, and what they
        leave over goes to the larger ones. If even the fixed part is too big, the prompt is rendered
        whole and the LLM layer refuses it with PromptTooLarge, which says by how much.
        """
        texts = {name: text.rstrip("\n") for name, (text, _) in flexible.items()}
        whole = self.prompt.render(**values, **texts)
        if self.counter.count_messages(whole) + self.max_output_tokens + SAFETY_TOKENS <= self.num_ctx:
            return whole
        room = self.room_for(values, texts)
        if room <= 0:
            return whole
        sizes = {name: self.counter.count(text) for name, text in texts.items()}
        remaining, pending = room, sorted(sizes, key=sizes.__getitem__)
        for index, name in enumerate(pending):
            share = min(sizes[name], remaining // (len(pending) - index))
            if share < sizes[name]:
                texts[name] = self.counter.truncate(texts[name], share, keep=flexible[name][1])
            remaining -= self.counter.count(texts[name])
        return self.prompt.render(**values, **texts)

    def request_schema(self, messages: list[dict[str, str]]) -> dict[str, Any] | None:
        """A JSON schema for this prompt's reply narrower than `schema`'s; None: `schema`'s own."""
        return None

    async def ask(self, messages: list[dict[str, str]]) -> tuple[T, list[LLMCall]]:
        return await self.llm.structured(
            role=self.name,
            model=self.model,
            messages=messages,
            schema=self.schema,
            parse=self.parse,
            num_ctx=self.num_ctx,
            max_output_tokens=self.max_output_tokens,
            temperature=self.temperature,
            seed=self.seed,
            constrain=self.constrained,
            request_schema=self.request_schema(messages),
        )
