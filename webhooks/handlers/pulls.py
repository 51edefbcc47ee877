"""`pull_request.closed` on our PRs: merged is positive human feedback, closed unmerged negative."""

from __future__ import annotations

from bot.github.job_request import JobKind, JobRequest
from bot.github.payloads import PullRequestEvent
from bot.store.github import HumanFeedback
from webhooks.handlers.common import job_origin
from webhooks.routing import HandlerContext, Ignored, Outcome, Router

router = Router()


@router.register("pull_request", action="closed")
async def pull_request_closed(event: PullRequestEvent, ctx: HandlerContext) -> Outcome:
    repo = event.repository.full_name
    pr = event.pull_request
    if not pr.is_bot_pr(repo):
        return Ignored("pull request aura-sicd did not open")
    merged = bool(pr.merged or pr.merged_at)
    actor = event.sender.login if event.sender else None
    await ctx.call(
        ctx.store.record_feedback,
        HumanFeedback(delivery_id=ctx.delivery_id, repo=repo, number=pr.number, merged=merged, branch=pr.head.ref,
                      actor=actor),
    )
    # The learning layer updates from a (cheap, durable) job so a slow update never delays the ack.
    return JobRequest(
        kind=JobKind.FEEDBACK,
        **job_origin(ctx, event.repository, event.installation_id),
        number=pr.number,
        base_ref=pr.base.ref,
        head_ref=pr.head.ref,
        head_sha=pr.head.sha,
        triggered_by=actor or "",
        merged=merged,
    )
