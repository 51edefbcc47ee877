"""The exact REST requests the bot makes when it publishes."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from bot.github.client import AppCredentials, GitHubApp
from bot.github.job_request import ReplyTarget
from bot.github.messages import permission_denied, pr_body, progress_comment, progress_marker
from bot.github.publish import Publisher
from tests.fakes.github import APP_ID, WEBHOOK_SECRET, private_key_pem

REPO = "octo/calc"
BRANCH = "aura-sicd/0123456789ab"


@pytest.fixture
def publisher(github) -> Publisher:
    app = GitHubApp(AppCredentials(app_id=APP_ID, private_key=SecretStr(private_key_pem()),
                                   webhook_secret=SecretStr(WEBHOOK_SECRET)), retry_backoff_s=0.01)
    gh = app.installation_client(1)
    publisher = Publisher(gh, REPO)
    publisher._keep = gh  # githubkit namespaces need their client alive
    return publisher


async def test_open_pr_exact_request_and_idempotent(publisher, github):
    body = pr_body("Fix add: it subtracted.", closes=12)
    pr = await publisher.open_pr(head=BRANCH, base="main", title="Fix add", body=body)
    again = await publisher.open_pr(head=BRANCH, base="main", title="Fix add", body=body)
    assert again == pr and pr.head_ref == BRANCH
    creates = [r for r in github.requests if r[0] == "POST" and r[1] == f"/repos/{REPO}/pulls"]
    assert creates == [("POST", f"/repos/{REPO}/pulls",
                        {"title": "Fix add", "head": BRANCH, "base": "main", "body": body, "draft": False})]
    assert "Closes #12" in body and body.startswith("Fix add: it subtracted.")
    lookup = github.list_pulls_route.calls[0].request.url.params
    assert (lookup["head"], lookup["state"]) == (f"octo:{BRANCH}", "open")


async def test_draft_pr_for_the_best_failed_attempt(publisher, github):
    pr = await publisher.open_pr(head=BRANCH, base="main", title="WIP", body=pr_body("best attempt"), draft=True)
    assert pr.draft is True


async def test_review_request_label_removal_and_comments(publisher, github):
    await publisher.request_review(101, ["alice"])
    await publisher.remove_label(12, "aura-sicd")
    comment = await publisher.comment(12, "Opened #101")
    assert ("POST", f"/repos/{REPO}/pulls/101/requested_reviewers", {"reviewers": ["alice"]}) in github.requests
    assert ("DELETE", f"/repos/{REPO}/issues/12/labels/aura-sicd", None) in github.requests
    assert ("POST", f"/repos/{REPO}/issues/12/comments", {"body": "Opened #101"}) in github.requests
    assert comment.id > 0


async def test_review_request_for_the_author_is_not_an_error(publisher, github):
    github.reviewers_route.side_effect = lambda request, **_: httpx.Response(
        422, json={"message": "Review cannot be requested from pull request author."})
    await publisher.request_review(101, ["aura-sicd[bot]"])  # no exception


async def test_label_already_gone_is_fine(publisher, github):
    github.remove_label_route.side_effect = lambda request, **_: httpx.Response(404, json={"message": "Label does not exist"})
    await publisher.remove_label(12, "aura-sicd")


async def test_progress_comment_is_edited_in_place(publisher, github):
    key = "delivery-1"
    first = progress_comment(key, iteration=1, max_iterations=3, state="working",
                             checks=[("tests", "failed")], reward=0.25, dashboard_url="http://aura/runs/1")
    second = progress_comment(key, iteration=2, max_iterations=3, state="working", checks=[("tests", "passed")], reward=0.9)
    cid = await publisher.upsert_comment(12, progress_marker(key), first)
    # a resumed job finds the comment by its marker instead of writing a second one
    assert await publisher.upsert_comment(12, progress_marker(key), second) == cid
    assert github.comment_route.call_count == 1
    assert ("PATCH", f"/repos/{REPO}/issues/comments/{cid}", {"body": second}) in github.requests
    assert "iteration 2 of 3" in second and "| `tests` | passed |" in second and "0.90" in second


async def test_reactions_on_each_kind_of_target(publisher, github):
    await publisher.react(ReplyTarget(kind="issue", id=12))
    await publisher.react(ReplyTarget(kind="issue_comment", id=5))
    await publisher.react(ReplyTarget(kind="review_comment", id=6), "rocket")
    await publisher.react(ReplyTarget(kind="review", id=7))  # reviews take none: no request
    assert [r for r in github.requests if r[1].endswith("reactions")] == [
        ("POST", f"/repos/{REPO}/issues/12/reactions", {"content": "eyes"}),
        ("POST", f"/repos/{REPO}/issues/comments/5/reactions", {"content": "eyes"}),
        ("POST", f"/repos/{REPO}/pulls/comments/6/reactions", {"content": "rocket"}),
    ]


async def test_reply_in_a_review_thread(publisher, github):
    reply = await publisher.reply_to_review_comment(101, 284312630, "Renamed `x` to `total` in calc.py.")
    assert ("POST", f"/repos/{REPO}/pulls/101/comments/284312630/replies",
            {"body": "Renamed `x` to `total` in calc.py."}) in github.requests
    assert reply.id > 0


async def test_check_run_created_then_completed(publisher, github):
    run_id = await publisher.create_check_run("a" * 40, title="Checking", summary="iteration 1 of 3")
    await publisher.complete_check_run(run_id, conclusion="success", title="All checks passed", summary="2 passed",
                                       text="| check | result |")
    create, update = [r for r in github.requests if "check-runs" in r[1]]
    assert create == ("POST", f"/repos/{REPO}/check-runs", {
        "name": "aura-sicd", "head_sha": "a" * 40, "status": "in_progress",
        "output": {"title": "Checking", "summary": "iteration 1 of 3"}})
    assert update == ("PATCH", f"/repos/{REPO}/check-runs/{run_id}", {
        "status": "completed", "conclusion": "success",
        "output": {"title": "All checks passed", "summary": "2 passed", "text": "| check | result |"}})


def test_messages_read_well():
    assert permission_denied("bob").startswith("Hi @bob,")
    assert pr_body("", closes=3).startswith("Changes proposed by aura-sicd.\n\nCloses #3")
    assert "Improves #9" in pr_body("x", improves=9)
