"""The agitator: turns a failed attempt into concrete guidance for the next one."""

from __future__ import annotations

from typing import Any

from bot.records import AgitatorGuidance, LLMCall, Rubric, Task
from bot.roles.prompting import Role, bounded_schema, defuse, render_task


def render_rubric(rubric: Rubric | None) -> str:
    if rubric is None:
        return "(not reviewed: the attempt failed before it could be scored)"
    lines = [
        f"coverage {rubric.coverage:.2f}, accuracy {rubric.accuracy:.2f}, "
        f"coherence {rubric.coherence:.2f}, formatting {rubric.formatting:.2f} (each from 0 to 1)"
    ]
    if rubric.issues:
        lines += ["Issues:", *(f"- {issue}" for issue in rubric.issues)]
    if rubric.comments:
        lines += ["Comments:", *(f"- {comment}" for comment in rubric.comments)]
    return "\n".join(lines)


def render_problems(problems: list[str]) -> str:
    if not problems:
        return "(none: the attempt was applied and checked)"
    return "\n".join(f"- {problem.strip()}" for problem in problems)


class Agitator(Role[AgitatorGuidance]):
    name = "agitator"
    schema = AgitatorGuidance

    def request_schema(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return bounded_schema(AgitatorGuidance)

    async def guide(
        self, task: Task, diff: str, check_summary: str, rubric: Rubric | None, problems: list[str]
    ) -> tuple[AgitatorGuidance, list[LLMCall]]:
        """Guidance for the next attempt. `problems` are what failed before the checks (policy
        violations, edits that did not apply, invalid output)."""
        messages = await self.prompt_for(
            {"task": render_task(task), "rubric": defuse(render_rubric(rubric), "review")},
            {
                "diff": (defuse(diff, "diff") or "(no diff: the attempt failed before producing one)", "middle"),
                "check_summary": (defuse(check_summary, "check_results") or "(the checks did not run)", "middle"),
                "problems": (defuse(render_problems(problems), "problems"), "head"),
            },
        )
        return await self.ask(messages)
