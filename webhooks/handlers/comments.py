"""`issue_comment` events: `/improve [guidance]` on an issue, our PR, or someone else's PR; `/aura forget <id>`."""

from __future__ import annotations

from bot.github.job_request import JobKind, JobRequest, ReplyTarget
from bot.github.payloads import IssueCommentEvent
from bot.github.text import command_argument, sanitize
from bot.records import GuidanceEntry
from webhooks.handlers.common import IMPROVE_COMMAND, TITLE_LIMIT, issue_job, job_origin
from webhooks.routing import HandlerContext, Ignored, Outcome, Router

router = Router()

FORGET_COMMAND = "/aura forget"


@router.register("issue_comment", action="created")
async def issue_comment_created(event: IssueCommentEvent, ctx: HandlerContext) -> Outcome:
    if command_argument(event.comment.body, FORGET_COMMAND) is not None:
        return forget_memory(event, ctx)
    argument = command_argument(event.comment.body, IMPROVE_COMMAND)
    if argument is None:
        return Ignored(f"not an {IMPROVE_COMMAND} command")
    login = commenter(event)
    guidance = [GuidanceEntry(source="human", text=argument, author=login)] if argument else []
    reply_to = [ReplyTarget(kind="issue_comment", id=event.comment.id)]
    if not event.issue.is_pull_request:
        return issue_job(
            ctx, event.repository, event.issue,
            installation_id=event.installation_id, triggered_by=login, guidance=guidance, reply_to=reply_to,
        )
    # A comment on a PR does not say which branch the PR has: ours are in the store; for any other the
    # admission step reads the PR from GitHub (after the acknowledgement) and decides.
    ours = await ctx.bot_pr(event.repository.full_name, event.issue.number)
    return JobRequest(
        kind=JobKind.PR_ITERATE if ours else JobKind.PR_FOREIGN,
        **job_origin(ctx, event.repository, event.installation_id),
        number=event.issue.number,
        head_ref=ours.branch if ours else None,
        base_ref=ours.base_ref if ours else None,
        title=sanitize(event.issue.title, max_chars=TITLE_LIMIT),
        body=sanitize(event.issue.body),
        guidance=guidance,
        triggered_by=login,
        reply_to=reply_to,
    )


def commenter(event: IssueCommentEvent) -> str:
    return event.comment.user.login if event.comment.user else (event.sender.login if event.sender else "")


def forget_memory(event: IssueCommentEvent, ctx: HandlerContext) -> Outcome:
    """`/aura forget <id>`: admission checks the sender may write, deletes the entry and replies."""
    argument = command_argument(event.comment.body, FORGET_COMMAND) or ""
    number = argument.split()[0].lstrip("#") if argument.split() else ""
    login = commenter(event)
    return JobRequest(
        kind=JobKind.FORGET,
        **job_origin(ctx, event.repository, event.installation_id),
        number=event.issue.number,
        triggered_by=login,
        memory_id=int(number) if number.isdigit() else None,
        reply_to=[ReplyTarget(kind="issue_comment", id=event.comment.id)],
    )
