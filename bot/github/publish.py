"""Everything the bot does on GitHub for a job: PRs, reviews, comments, reactions, labels, check runs.

`Publisher` wraps one installation client for one repository. Calls are idempotent where GitHub lets
them be (an open PR for the branch is found before one is created; the progress comment is found by its
marker), so a job resumed after a crash does not open a second PR. Pushing is `bot.jobs.git.push_commit` (fast-forward only).
"""

from __future__ import annotations

from typing import Literal

from githubkit import GitHub
from githubkit.exception import RequestFailed
from pydantic import BaseModel

from bot.github.job_request import ReplyTarget
from sandbox.config import SETUP_PASSTHROUGH_ENV
from sandbox.scrub import scrub, secret_values

Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
CheckConclusion = Literal["success", "failure", "neutral", "cancelled", "timed_out", "action_required", "skipped"]


class PullRef(BaseModel):
    number: int
    html_url: str
    head_ref: str
    base_ref: str
    state: str = "open"
    draft: bool = False


class CommentRef(BaseModel):
    id: int
    html_url: str | None = None


def _pull_ref(data: dict) -> PullRef:
    return PullRef(
        number=data["number"],
        html_url=data.get("html_url", ""),
        head_ref=data["head"]["ref"],
        base_ref=data["base"]["ref"],
        state=data.get("state", "open"),
        draft=bool(data.get("draft")),
    )


def redact(text: str) -> str:
    """`text` without the values of the variables passed into the sandbox's setup (sandbox/scrub.py): whatever
    the bot posts, a token in PIP_INDEX_URL or a proxy password never reaches GitHub."""
    return scrub(text, secret_values(SETUP_PASSTHROUGH_ENV))


class Publisher:
    def __init__(self, gh: GitHub, repo: str) -> None:
        self.gh = gh
        self.repo = repo
        self.owner, _, self.name = repo.partition("/")

    # --- pull requests ----------------------------------------------------------------------------

    async def find_open_pr(self, head_branch: str) -> PullRef | None:
        response = await self.gh.rest.pulls.async_list(
            self.owner, self.name, state="open", head=f"{self.owner}:{head_branch}", per_page=1
        )
        pulls = response.json()
        return _pull_ref(pulls[0]) if pulls else None

    async def open_pr(self, *, head: str, base: str, title: str, body: str, draft: bool = False) -> PullRef:
        """The open PR for `head`, created only if there is none (safe to call again after a crash)."""
        if existing := await self.find_open_pr(head):
            return existing
        response = await self.gh.rest.pulls.async_create(
            self.owner, self.name,
            data={"title": redact(title), "head": head, "base": base, "body": redact(body), "draft": draft}
        )
        return _pull_ref(response.json())

    async def get_pr(self, number: int) -> dict:
        return (await self.gh.rest.pulls.async_get(self.owner, self.name, number)).json()

    async def request_review(self, number: int, reviewers: list[str]) -> None:
        """Ask `reviewers` to review; GitHub refuses the PR's author, so a 422 for that is not an error."""
        if not reviewers:
            return
        try:
            await self.gh.rest.pulls.async_request_reviewers(
                self.owner, self.name, number, data={"reviewers": reviewers}
            )
        except RequestFailed as exc:
            if exc.response.status_code != 422:
                raise

    # --- comments and reactions -------------------------------------------------------------------

    async def comment(self, number: int, body: str) -> CommentRef:
        response = await self.gh.rest.issues.async_create_comment(self.owner, self.name, number,
                                                                 data={"body": redact(body)})
        data = response.json()
        return CommentRef(id=data["id"], html_url=data.get("html_url"))

    async def edit_comment(self, comment_id: int, body: str) -> None:
        await self.gh.rest.issues.async_update_comment(self.owner, self.name, comment_id, data={"body": redact(body)})

    async def find_comment(self, number: int, marker: str) -> CommentRef | None:
        """Our comment on `number` containing `marker` (the first 100 comments are searched)."""
        response = await self.gh.rest.issues.async_list_comments(self.owner, self.name, number, per_page=100)
        for data in response.json():
            if marker in (data.get("body") or ""):
                return CommentRef(id=data["id"], html_url=data.get("html_url"))
        return None

    async def upsert_comment(self, number: int, marker: str, body: str, comment_id: int | None = None) -> int:
        """Edit the comment carrying `marker` (or `comment_id`) in place; create it the first time."""
        if comment_id is None and (found := await self.find_comment(number, marker)):
            comment_id = found.id
        if comment_id is None:
            return (await self.comment(number, body)).id
        await self.edit_comment(comment_id, body)
        return comment_id

    async def react(self, target: ReplyTarget, content: Reaction = "eyes") -> None:
        """React on the triggering issue or comment; reviews themselves take no reactions."""
        data = {"content": content}
        reactions = self.gh.rest.reactions
        if target.kind == "issue":
            await reactions.async_create_for_issue(self.owner, self.name, target.id, data=data)
        elif target.kind == "issue_comment":
            await reactions.async_create_for_issue_comment(self.owner, self.name, target.id, data=data)
        elif target.kind == "review_comment":
            await reactions.async_create_for_pull_request_review_comment(self.owner, self.name, target.id, data=data)

    async def reply_to_review_comment(self, pull_number: int, comment_id: int, body: str) -> CommentRef:
        response = await self.gh.rest.pulls.async_create_reply_for_review_comment(
            self.owner, self.name, pull_number, comment_id, data={"body": redact(body)}
        )
        data = response.json()
        return CommentRef(id=data["id"], html_url=data.get("html_url"))

    async def remove_label(self, number: int, label: str) -> None:
        try:
            await self.gh.rest.issues.async_remove_label(self.owner, self.name, number, label)
        except RequestFailed as exc:
            if exc.response.status_code != 404:  # already removed
                raise

    # --- check runs -------------------------------------------------------------------------------

    async def create_check_run(
        self,
        head_sha: str,
        *,
        name: str = "aura-sicd",
        title: str,
        summary: str,
        text: str = "",
        conclusion: CheckConclusion | None = None,
        details_url: str | None = None,
    ) -> int:
        """A check run on `head_sha`: in progress without `conclusion`, completed with one."""
        data: dict = {"name": name, "head_sha": head_sha, "output": _output(title, summary, text)}
        data |= {"status": "completed", "conclusion": conclusion} if conclusion else {"status": "in_progress"}
        if details_url:
            data["details_url"] = details_url
        response = await self.gh.rest.checks.async_create(self.owner, self.name, data=data)
        return int(response.json()["id"])

    async def complete_check_run(
        self, check_run_id: int, *, conclusion: CheckConclusion, title: str, summary: str, text: str = ""
    ) -> None:
        await self.gh.rest.checks.async_update(
            self.owner,
            self.name,
            check_run_id,
            data={"status": "completed", "conclusion": conclusion, "output": _output(title, summary, text)},
        )


def _output(title: str, summary: str, text: str) -> dict:
    # GitHub caps each field at 65535 characters
    output = {"title": redact(title)[:255], "summary": redact(summary)[:65000]}
    if text:
        output["text"] = redact(text)[:65000]
    return output
