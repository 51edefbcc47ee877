"""The generator: proposes file changes for a task, written in the chosen edit format (bot/edit_formats/)."""

from __future__ import annotations

from typing import Any

from bot.edit_formats import DEFAULT_EDIT_FORMAT, get_format
from bot.llm import OllamaLLM
from bot.records import GuidanceEntry, LLMCall, Proposal, Task
from bot.roles.prompting import PromptTemplate, Role, defuse, load_prompt, render_guidance, render_task


class Generator(Role[Proposal]):
    name = "generator"
    last_messages: list[dict[str, str]] = []  # the prompt of the latest request, kept for training data

    def __init__(self, llm: OllamaLLM, *, edit_format: str = DEFAULT_EDIT_FORMAT, **options: Any) -> None:
        """`options` are the Role's (model, num_ctx, ...); `edit_format` names a registered format, whose
        prompt parts, output schema and parser the generator uses."""
        self.edit_format = get_format(edit_format)
        # sent as Ollama's `format`; the format's parser (parse below) turns the reply into the Proposal
        self.schema = self.edit_format.output_schema  # type: ignore[assignment]
        super().__init__(llm, **options)

    def prompt_template(self) -> PromptTemplate:
        return load_prompt(self.name, self.edit_format.name)

    def parse(self, reply: str) -> Proposal:
        return self.edit_format.parse(reply)

    async def propose(
        self, task: Task, context: str, guidance: list[GuidanceEntry]
    ) -> tuple[Proposal, list[LLMCall]]:
        """Ask for a Proposal. `context` is the rendered repository context (bot/context/) and
        `guidance` the feedback so far, newest last. If they overflow the window anyway, the oldest
        guidance and the middle of the context are cut first."""
        messages = self.fit(
            {"task": render_task(task)},
            {
                "context": (defuse(context, "repository_context") or "(no files were selected)", "middle"),
                "guidance": (render_guidance(guidance), "tail"),
            },
        )
        self.last_messages = messages
        return await self.ask(messages)

    def context_budget(self, task: Task, guidance: list[GuidanceEntry]) -> int:
        """Tokens left for the repository context once the task, the guidance and the instructions
        are in the prompt and the reply is reserved: what bot/context/ may fill."""
        values = {"task": render_task(task), "guidance": render_guidance(guidance)}
        return max(0, self.room_for(values, {"context": ""}))
