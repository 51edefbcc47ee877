"""The discriminator: scores a diff against its task on the rubric (coverage, accuracy, ...)."""

from __future__ import annotations

from typing import Any

from bot.records import LLMCall, Rubric, Task
from bot.roles.prompting import Role, bounded_schema, defuse, render_task


class Discriminator(Role[Rubric]):
    name = "discriminator"
    schema = Rubric

    def request_schema(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return bounded_schema(Rubric)

    async def score(self, task: Task, diff: str, check_summary: str) -> tuple[Rubric, list[LLMCall]]:
        """Score `diff` given the checks' summary; a long diff or log is cut in the middle to fit."""
        messages = await self.prompt_for(
            {"task": render_task(task)},
            {
                "diff": (defuse(diff, "diff") or "(empty diff)", "middle"),
                "check_summary": (defuse(check_summary, "check_results") or "(no checks ran)", "middle"),
            },
        )
        return await self.ask(messages)
