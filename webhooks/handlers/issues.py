"""`issues` events: the trigger label starts the cycle on the issue."""

from __future__ import annotations

from bot.github.payloads import IssuesEvent
from webhooks.handlers.common import issue_job
from webhooks.routing import HandlerContext, Ignored, Outcome, Router

router = Router()


@router.register("issues", action="labeled")
async def issue_labeled(event: IssuesEvent, ctx: HandlerContext) -> Outcome:
    repo = event.repository.full_name
    if event.label is None or not ctx.is_trigger_label(repo, event.label.name):
        return Ignored(f"label {event.label.name if event.label else None!r} is not the trigger label")
    if event.issue.state == "closed":
        return Ignored("the issue is closed")
    return issue_job(
        ctx,
        event.repository,
        event.issue,
        installation_id=event.installation_id,
        triggered_by=event.sender.login if event.sender else "",
        label=event.label.name,
    )
