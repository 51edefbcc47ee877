"""The generator: proposes file changes for a task, written in the chosen edit format (bot/edit_formats/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.context import PromptContext, RepoIndex, build_generator_context
from bot.edit_formats import DEFAULT_EDIT_FORMAT, get_format
from bot.llm.client import ModelClient
from bot.records import GuidanceEntry, IterationRecord, LLMCall, Proposal, Task
from bot.roles.prompting import (
    PromptTemplate,
    Role,
    defuse,
    load_prompt,
    render_guidance,
    render_task,
)
from bot.llm.tokens import count_tokens, truncate_to_tokens

# Context sections that change from one attempt to the next (bot/context/budget.py titles). They go
# after the stable part of the prompt, so a server's prompt cache reuses everything before them.
CHANGING_SECTIONS = ("Your previous attempt", "Files in the failing tests' tracebacks")
NO_PREVIOUS = "(none: this is the first attempt)"
PREVIOUS_SHARE = 0.3  # of the context budget, kept for the previous attempt in every iteration


def split_context(context: PromptContext) -> tuple[str, str]:
    """(stable, changing): the repository context, and what in it is about the previous attempt."""
    stable = [s.render() for s in context.sections if not s.title.startswith(CHANGING_SECTIONS)]
    changing = [s.render() for s in context.sections if s.title.startswith(CHANGING_SECTIONS)]
    return "\n\n".join(stable), "\n\n".join(changing)


def cacheable_context(
    generator: Generator, index: RepoIndex, task: Task, guidance: list[GuidanceEntry],
    previous: IterationRecord | None, guidance_cap: int,
) -> tuple[str, str, int]:
    """(stable context, previous attempt, tokens): the repository context built for the task alone, at
    a budget that does not change between iterations (the window less the most the guidance may take
    and PREVIOUS_SHARE for the previous attempt), so it is byte-identical in every prompt of the
    episode; and the previous attempt's sections, in what the prompt has left.

    Building the context with the previous attempt at once would move files between its sections
    and change their budgets from one iteration to the next (bot/context/budget.py)."""
    whole = generator.context_budget(task, [])
    stable_budget = int((whole - generator.counter.to_estimate(guidance_cap)) * (1 - PREVIOUS_SHARE))
    stable_budget = max(256, stable_budget // 512 * 512)  # in steps, so the counter's calibration rarely moves it
    stable = build_generator_context(index, task, budget_tokens=stable_budget)
    if previous is None:
        return stable.render(), "", stable.tokens
    room = max(256, generator.context_budget(task, guidance) - stable.tokens)
    _, changing = split_context(build_generator_context(index, task, budget_tokens=room, previous=previous))
    changing = truncate_to_tokens(changing, room, keep="middle")
    return stable.render(), changing, stable.tokens + count_tokens(changing)


class Generator(Role[Proposal]):
    name = "generator"
    last_messages: list[dict[str, str]] = []  # the prompt of the latest request, kept for training data

    def __init__(
        self,
        llm: ModelClient,
        *,
        edit_format: str = DEFAULT_EDIT_FORMAT,
        read_file: Callable[[str], str | None] | None = None,
        **options: Any,
    ) -> None:
        """`options` are the Role's (model, num_ctx, ...); `edit_format` names a registered format, whose
        prompt parts, output schema and parser the generator uses. `read_file` gives a file's current
        text to formats that write whole files."""
        self.edit_format = get_format(edit_format)
        # sent as the schema when the format is constrained; the format's parser turns the reply into the Proposal
        self.schema = self.edit_format.output_schema  # type: ignore[assignment]
        self.constrained = self.edit_format.constrained
        self.read_file = read_file
        super().__init__(llm, **options)

    def prompt_template(self) -> PromptTemplate:
        return load_prompt(self.name, self.edit_format.name)

    def parse(self, reply: str) -> Proposal:
        return self.edit_format.parse(reply, self.read_file)

    def request_schema(self, messages: list[dict[str, str]]) -> dict[str, Any] | None:
        return self.edit_format.request_schema(messages, self.read_file)

    async def propose(
        self, task: Task, context: str, guidance: list[GuidanceEntry], previous: str = ""
    ) -> tuple[Proposal, list[LLMCall]]:
        """Ask for a Proposal. `context` is the rendered repository context (bot/context/), `previous`
        what the last attempt did and how it failed, `guidance` the feedback so far, newest last. If
        they overflow the window anyway, the oldest guidance and the middle of the others are cut."""
        messages = await self.prompt_for(
            {"task": render_task(task)},
            {
                "context": (defuse(context, "repository_context") or "(no files were selected)", "middle"),
                "previous": (defuse(previous, "previous_attempt") or NO_PREVIOUS, "middle"),
                "guidance": (render_guidance(guidance), "tail"),
            },
        )
        self.last_messages = messages
        return await self.ask(messages)

    def context_budget(self, task: Task, guidance: list[GuidanceEntry]) -> int:
        """Tokens left for the repository context (the previous attempt included) once the task, the
        guidance and the instructions are in the prompt and the reply is reserved: what bot/context/
        may fill, in its own token estimate (bot.llm.tokens.count_tokens)."""
        values = {"task": render_task(task), "guidance": render_guidance(guidance), "previous": NO_PREVIOUS}
        room = self.room_for(values, {"context": ""})
        return max(0, self.counter.to_estimate(room))
