"""The generator: proposes file changes for a task, written in the chosen edit format (bot/edit_formats/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.context import RepoIndex, build_generator_context
from bot.context.attempt import build_attempt_context
from bot.edit_formats import DEFAULT_EDIT_FORMAT, get_format
from bot.llm.client import ModelClient
from bot.llm.tokens import count_tokens
from bot.records import GuidanceEntry, IterationRecord, LLMCall, Proposal, Task
from bot.roles.prompting import (
    PromptTemplate,
    Role,
    defuse,
    load_prompt,
    render_guidance,
    render_task,
)

NO_PREVIOUS = "(none: this is the first attempt)"
# Shares of the room the generator's prompt leaves for its variable parts (PromptBudget).
GUIDANCE_SHARE = 0.20  # the guidance history, newest entries first
ATTEMPT_SHARE = 0.25  # the previous attempt, its failures and the code they point at
BUDGET_STEP = 512  # the task's part moves in steps, so the counter's calibration rarely changes it
# At most this share of a later attempt's prompt is new (the guidance and the attempt's part): a server's
# prompt cache reuses the rest, the instructions, the task and its context, and only reads the new part.
CHANGING_SHARE = 0.25
MIN_CHANGING = 512  # ...but never less than this, so the last failure stays in view on small prompts


@dataclass(frozen=True)
class PromptBudget:
    """The one budget of the generator's prompt, per model window, in one unit: bot.llm.tokens
    estimates (what bot/context/ and `fit_guidance` count in). `task` is the same in every attempt of
    an episode, so that part of the prompt is byte-identical and a server's prompt cache reuses it."""

    task: int  # the repository context for the task
    attempt: int  # the previous attempt's part
    guidance: int  # the guidance history
    fixed: int = 0  # the prompt's own text around them: the instructions, the task, the closing line

    @classmethod
    def of(cls, room: int, fixed: int = 0) -> PromptBudget:
        """Split `room`, what the prompt leaves once its fixed text and the reply are reserved."""
        guidance, attempt = int(room * GUIDANCE_SHARE), int(room * ATTEMPT_SHARE)
        return cls(task=max(256, (room - guidance - attempt) // BUDGET_STEP * BUDGET_STEP), attempt=attempt,
                   guidance=guidance, fixed=fixed)

    def changing(self, task_tokens: int) -> int:
        """Room for what changes between attempts, the guidance and the attempt's part together, next to
        a task's part of `task_tokens`: their shares and what the task's part left over, but at most
        CHANGING_SHARE of the whole prompt (and at least MIN_CHANGING)."""
        shares = self.guidance + self.attempt + max(0, self.task - task_tokens)
        cap = int((self.fixed + task_tokens) * CHANGING_SHARE / (1 - CHANGING_SHARE))
        return min(shares, max(MIN_CHANGING, cap))


# People's words, the base's failing tests and policy limits are kept before the model's older advice.
PINNED_SOURCES = frozenset({"human", "review", "baseline", "policy"})


def fit_guidance(history: list[GuidanceEntry], budget_tokens: int) -> list[GuidanceEntry]:
    """The entries that fit the budget, in their original order: the newest (what the last attempt
    got), then the pinned sources' newest first, then the others newest first."""
    newest = [len(history) - 1] if history else []
    pinned = [i for i in reversed(range(len(history) - 1)) if history[i].source in PINNED_SOURCES]
    others = [i for i in reversed(range(len(history) - 1)) if history[i].source not in PINNED_SOURCES]
    kept: set[int] = set()
    used = 0
    for group in (newest, pinned, others):
        for position in group:
            cost = guidance_tokens([history[position]])
            if used + cost > budget_tokens:
                break
            kept.add(position)
            used += cost
    return [entry for position, entry in enumerate(history) if position in kept]


def guidance_tokens(entries: list[GuidanceEntry]) -> int:
    return sum(count_tokens(entry.text) + 16 for entry in entries)


@dataclass(frozen=True)
class GeneratorContext:
    task_part: str  # the same bytes in every attempt of an episode
    attempt_part: str  # what the previous attempt left to learn from; empty in the first
    guidance: list[GuidanceEntry]  # the newest entries of the history that fit
    tokens: int  # of the two parts


def generator_context(
    index: RepoIndex, task: Task, previous: IterationRecord | None, budget: PromptBudget,
    history: list[GuidanceEntry] | None = None,
) -> GeneratorContext:
    """The task's part, at a budget that does not change between attempts, then what changes: the
    guidance (at most a third of that room when there is a previous attempt) and the attempt's part
    (bot/context/attempt.py) in the rest."""
    stable = build_generator_context(index, task, budget_tokens=budget.task)
    rendered = stable.render()
    room = budget.changing(stable.tokens)
    guidance = fit_guidance(history or [], min(budget.guidance, room if previous is None else room // 3))
    if previous is None:
        return GeneratorContext(rendered, "", guidance, stable.tokens)
    attempt = build_attempt_context(index, task, previous, budget_tokens=room - guidance_tokens(guidance),
                                    shown=rendered)
    return GeneratorContext(rendered, attempt.render(), guidance, stable.tokens + attempt.tokens)


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
        return max(0, self.counter.to_estimate(self.room_beside(self._fixed_tokens(task, guidance))))

    def budget(self, task: Task) -> PromptBudget:
        """The prompt's one budget for `task` in this model's window: the room beside the instructions,
        the task and the reply, split between the task's context, the attempt's and the guidance."""
        fixed = self._fixed_tokens(task, [])
        room = max(0, self.counter.to_estimate(self.room_beside(fixed)))
        return PromptBudget.of(room, fixed=self.counter.to_estimate(fixed))

    def _fixed_tokens(self, task: Task, guidance: list[GuidanceEntry]) -> int:
        """The prompt without its repository context, in this model's tokens."""
        values = {"task": render_task(task), "guidance": render_guidance(guidance), "previous": NO_PREVIOUS}
        return self.fixed_tokens(values, {"context": ""})
