"""Reviews on our PRs: the review body and each line comment become guidance for the next iteration.

A review arrives as one `pull_request_review` delivery plus one `pull_request_review_comment` delivery
per line comment; they share the PR's coalesce key, so the queue folds the burst into one job.
"""

from __future__ import annotations

from bot.github.job_request import JobKind, ReplyTarget
from bot.github.payloads import PullRequestReviewCommentEvent, PullRequestReviewEvent
from bot.github.text import sanitize
from bot.records import GuidanceEntry
from webhooks.handlers.common import pr_job, review_coalesce_key
from webhooks.routing import HandlerContext, Ignored, Outcome, Router

router = Router()

FEEDBACK_STATES = ("commented", "changes_requested")
HUNK_LIMIT = 4000


@router.register("pull_request_review", action="submitted")
async def review_submitted(event: PullRequestReviewEvent, ctx: HandlerContext) -> Outcome:
    repo = event.repository.full_name
    if not event.pull_request.is_bot_pr(repo):
        return Ignored("review on a pull request aura-sicd did not open")
    state = event.review.normalized_state
    if state not in FEEDBACK_STATES:
        return Ignored(f"review state {state!r} asks for no change")
    text = sanitize(event.review.body)
    if not text:
        return Ignored("the review has no body; its line comments arrive as their own deliveries")
    login = event.review.user.login if event.review.user else (event.sender.login if event.sender else "")
    return pr_job(
        ctx, event.repository, event.pull_request,
        kind=JobKind.PR_ITERATE,
        installation_id=event.installation_id,
        triggered_by=login,
        guidance=[GuidanceEntry(source="review", text=text, author=login)],
        reply_to=[ReplyTarget(kind="review", id=event.review.id)],
        coalesce_key=review_coalesce_key(repo, event.pull_request.number),
    )


@router.register("pull_request_review_comment", action="created")
async def review_comment_created(event: PullRequestReviewCommentEvent, ctx: HandlerContext) -> Outcome:
    repo = event.repository.full_name
    if not event.pull_request.is_bot_pr(repo):
        return Ignored("review comment on a pull request aura-sicd did not open")
    comment = event.comment
    text = sanitize(comment.body)
    if not text:
        return Ignored("empty review comment")
    hunk = sanitize(comment.diff_hunk, max_chars=HUNK_LIMIT)
    if hunk:
        text = f"{text}\n\nOn this part of the diff:\n```diff\n{hunk}\n```"
    login = comment.user.login if comment.user else (event.sender.login if event.sender else "")
    entry = GuidanceEntry(
        source="review", text=text, path=comment.path, line=comment.line or comment.original_line, author=login
    )
    return pr_job(
        ctx, event.repository, event.pull_request,
        kind=JobKind.PR_ITERATE,
        installation_id=event.installation_id,
        triggered_by=login,
        guidance=[entry],
        reply_to=[ReplyTarget(kind="review_comment", id=comment.id)],
        coalesce_key=review_coalesce_key(repo, event.pull_request.number),
    )
