"""Every recorded delivery parses into our tolerant models exactly as GitHub sent it."""

from __future__ import annotations

import json

import pytest

from bot.github import payloads
from tests.fakes.github import FIXTURES

MODELS = {
    "ping": payloads.PingEvent,
    "issues": payloads.IssuesEvent,
    "issue_comment": payloads.IssueCommentEvent,
    "pull_request": payloads.PullRequestEvent,
    "pull_request_review": payloads.PullRequestReviewEvent,
    "pull_request_review_comment": payloads.PullRequestReviewCommentEvent,
    "installation": payloads.InstallationEvent,
}
RECORDED = sorted((FIXTURES / "webhooks").rglob("*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_payload_parses(path):
    event = path.name.split(".")[0]
    model = MODELS[event].model_validate(json.loads(path.read_text()))
    assert model.sender is not None


def test_the_shared_set_is_all_here():
    assert len(RECORDED) == 25


def test_bot_pr_means_our_prefix_in_the_same_repository():
    data = json.loads((FIXTURES / "webhooks" / "pull_request.opened.json").read_text())
    pr = payloads.PullRequest.model_validate(data["pull_request"])
    assert not pr.is_bot_pr("Codertocat/Hello-World")  # head "changes"
    data["pull_request"]["head"]["ref"] = "aura-sicd/abc"
    pr = payloads.PullRequest.model_validate(data["pull_request"])
    assert pr.is_bot_pr("Codertocat/Hello-World")
    assert not pr.is_bot_pr("someone/else")


def test_bot_accounts():
    assert payloads.Account(login="aura-sicd[bot]").is_bot
    assert payloads.Account(login="renovate", type="Bot").is_bot
    assert not payloads.Account(login="alice", type="User").is_bot
