"""The generator: proposes file changes (search/replace edits) for a task."""

from __future__ import annotations

from bot.records import GuidanceEntry, LLMCall, Proposal, Task
from bot.roles.prompting import Role, defuse, render_guidance, render_task


class Generator(Role[Proposal]):
    name = "generator"
    schema = Proposal
    last_messages: list[dict[str, str]] = []  # the prompt of the latest request, kept for training data

    async def propose(
        self, task: Task, context: str, guidance: list[GuidanceEntry]
    ) -> tuple[Proposal, list[LLMCall]]:
        """Ask for a Proposal. `context` is the rendered repository context (bot/context.py) and
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
        are in the prompt and the reply is reserved: what bot/context.py may fill."""
        values = {"task": render_task(task), "guidance": render_guidance(guidance)}
        return max(0, self.room_for(values, {"context": ""}))
