"""A fake GitHub REST API at the HTTP level (respx), for the App's calls, plus payload helpers.

    with respx.mock(assert_all_called=False) as mock:
        gh = FakeGitHub(mock)
        ... code under test ...
        assert gh.comments == [...]

Bodies come from GitHub's OpenAPI examples in tests/fixtures/github/rest, changed only where a test
needs a particular value. Every request is kept in `gh.requests` as (method, path, json body).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.webhooks import sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "github"
WEBHOOK_SECRET = "test-webhook-secret"
APP_ID = 42
TOKEN = "ghs_FAKEinstallationTOKEN0123456789abcdef"


@cache
def private_key_pem() -> str:
    """A real RSA key: githubkit signs the App's JWT before any request is made."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def webhook_payload(name: str) -> dict[str, Any]:
    """A recorded delivery body, e.g. "issues.labeled" or "variants/issue_comment.created.with-installation"."""
    return json.loads((FIXTURES / "webhooks" / f"{name}.json").read_text())


def webhook_bytes(name: str) -> bytes:
    """The recorded body byte for byte, as GitHub sent it."""
    return (FIXTURES / "webhooks" / f"{name}.json").read_bytes()


def rest_body(name: str) -> Any:
    return json.loads((FIXTURES / "rest" / f"{name}.json").read_text())


def signed_headers(event: str, body: bytes, delivery: str, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body, "sha256"),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }


def pull_request_body(number: int, *, head_ref: str, repo: str, base_ref: str = "main",
                      head_sha: str = "a" * 40, state: str = "open", head_repo: str | None = None) -> dict:
    body = copy.deepcopy(rest_body("pull-request"))
    body.update(number=number, state=state, html_url=f"https://github.com/{repo}/pull/{number}")
    body["head"].update(ref=head_ref, sha=head_sha)
    body["head"]["repo"]["full_name"] = head_repo or repo
    body["base"]["ref"] = base_ref
    body["base"]["repo"]["full_name"] = repo
    return body


class FakeGitHub:
    def __init__(
        self,
        mock: respx.MockRouter,
        *,
        api_url: str = "https://api.github.com",
        permission: str = "write",
        token: str = TOKEN,
        token_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.api = api_url.rstrip("/")
        self.mock = mock
        self.permission = permission
        self.permissions: dict[str, str] = {}  # per-login overrides of `permission`
        self.comment_authors: dict[int, str] = {}  # comment id → login, for listed comments (default: the fixture's)
        self.token = token
        self.token_ttl = token_ttl
        self.requests: list[tuple[str, str, Any]] = []
        self.pulls: dict[int, dict] = {}  # number → PR body, for GET /pulls/{n} and list by head
        self.installations: dict[str, int] = {}  # repo → installation id for GET /repos/{o}/{r}/installation
        self._next_id = 1000
        m = mock
        a = self.api
        self.token_route = m.post(url__regex=rf"{a}/app/installations/(?P<iid>\d+)/access_tokens").mock(side_effect=self._token)
        self.repo_installation_route = m.get(url__regex=rf"{a}/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/installation$").mock(side_effect=self._repo_installation)
        self.permission_route = m.get(url__regex=rf"{a}/repos/[^/]+/[^/]+/collaborators/(?P<user>[^/]+)/permission").mock(side_effect=self._permission)
        self.comment_route = m.post(url__regex=rf"{a}/repos/[^/]+/[^/]+/issues/(?P<n>\d+)/comments$").mock(side_effect=self._comment)
        self.list_comments_route = m.get(url__regex=rf"{a}/repos/[^/]+/[^/]+/issues/(?P<n>\d+)/comments").mock(side_effect=self._list_comments)
        self.edit_comment_route = m.patch(url__regex=rf"{a}/repos/[^/]+/[^/]+/issues/comments/(?P<cid>\d+)$").mock(side_effect=self._edit_comment)
        self.reaction_route = m.post(url__regex=rf"{a}/repos/[^/]+/[^/]+/(issues|pulls)/.*reactions$").mock(side_effect=self._reaction)
        self.list_pulls_route = m.get(url__regex=rf"{a}/repos/[^/]+/[^/]+/pulls(\?.*)?$").mock(side_effect=self._list_pulls)
        self.get_pull_route = m.get(url__regex=rf"{a}/repos/[^/]+/[^/]+/pulls/(?P<n>\d+)$").mock(side_effect=self._get_pull)
        self.create_pull_route = m.post(url__regex=rf"{a}/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls$").mock(side_effect=self._create_pull)
        self.reviewers_route = m.post(url__regex=rf"{a}/repos/[^/]+/[^/]+/pulls/(?P<n>\d+)/requested_reviewers$").mock(side_effect=self._echo(201))
        self.reply_route = m.post(url__regex=rf"{a}/repos/[^/]+/[^/]+/pulls/(?P<n>\d+)/comments/(?P<cid>\d+)/replies$").mock(side_effect=self._reply)
        self.remove_label_route = m.delete(url__regex=rf"{a}/repos/[^/]+/[^/]+/issues/(?P<n>\d+)/labels/(?P<label>[^/]+)$").mock(side_effect=self._echo(200, []))
        self.check_run_route = m.post(url__regex=rf"{a}/repos/[^/]+/[^/]+/check-runs$").mock(side_effect=self._check_run)
        self.update_check_run_route = m.patch(url__regex=rf"{a}/repos/[^/]+/[^/]+/check-runs/(?P<cid>\d+)$").mock(side_effect=self._check_run)
        self.comments: list[tuple[int, str]] = []  # (issue number, body) of created comments
        self._comment_bodies: dict[int, tuple[int, str]] = {}

    # --- helpers ----------------------------------------------------------------------------------

    def _record(self, request: httpx.Request) -> Any:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        return body

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _echo(self, status: int, body: Any = None):
        def respond(request: httpx.Request, **_: Any) -> httpx.Response:
            self._record(request)
            return httpx.Response(status, json=body if body is not None else {})

        return respond

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _ in self.requests if method is None or m == method]

    # --- routes -----------------------------------------------------------------------------------

    def _token(self, request: httpx.Request, iid: str) -> httpx.Response:
        self._record(request)
        body = copy.deepcopy(rest_body("installation-token"))
        body["token"] = self.token
        body["expires_at"] = (datetime.now(UTC) + self.token_ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
        return httpx.Response(201, json=body)

    def _repo_installation(self, request: httpx.Request, o: str, r: str) -> httpx.Response:
        self._record(request)
        iid = self.installations.get(f"{o}/{r}")
        if iid is None:
            return httpx.Response(404, json={"message": "Not Found"})
        body = copy.deepcopy(rest_body("installation"))
        body["id"] = iid
        return httpx.Response(200, json=body)

    def _permission(self, request: httpx.Request, user: str) -> httpx.Response:
        self._record(request)
        body = copy.deepcopy(rest_body("collaborator-permission"))
        body["permission"] = body["role_name"] = self.permissions.get(user, self.permission)
        body["user"]["login"] = user
        return httpx.Response(200, json=body)

    def _comment(self, request: httpx.Request, n: str) -> httpx.Response:
        data = self._record(request)
        body = copy.deepcopy(rest_body("issue-comment"))
        body.update(id=self._new_id(), body=data["body"])
        self.comments.append((int(n), data["body"]))
        self._comment_bodies[body["id"]] = (int(n), data["body"])
        return httpx.Response(201, json=body)

    def _list_comments(self, request: httpx.Request, n: str) -> httpx.Response:
        self._record(request)
        items = []
        for cid, (number, text) in self._comment_bodies.items():
            if number == int(n):
                body = copy.deepcopy(rest_body("issue-comment"))
                body.update(id=cid, body=text)
                if cid in self.comment_authors:
                    body["user"]["login"] = self.comment_authors[cid]
                items.append(body)
        return httpx.Response(200, json=items)

    def _edit_comment(self, request: httpx.Request, cid: str) -> httpx.Response:
        data = self._record(request)
        number, _ = self._comment_bodies.get(int(cid), (0, ""))
        self._comment_bodies[int(cid)] = (number, data["body"])
        body = copy.deepcopy(rest_body("issue-comment"))
        body.update(id=int(cid), body=data["body"])
        return httpx.Response(200, json=body)

    def _reaction(self, request: httpx.Request, **_: Any) -> httpx.Response:
        data = self._record(request)
        body = copy.deepcopy(rest_body("reaction"))
        body["content"] = data["content"]
        return httpx.Response(201, json=body)

    def _list_pulls(self, request: httpx.Request, **_: Any) -> httpx.Response:
        self._record(request)
        head = request.url.params.get("head", "")
        branch = head.partition(":")[2]
        found = [pr for pr in self.pulls.values() if pr["head"]["ref"] == branch and pr["state"] == "open"]
        return httpx.Response(200, json=found)

    def _get_pull(self, request: httpx.Request, n: str) -> httpx.Response:
        self._record(request)
        if int(n) not in self.pulls:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json=self.pulls[int(n)])

    def _create_pull(self, request: httpx.Request, o: str, r: str) -> httpx.Response:
        data = self._record(request)
        number = max(self.pulls, default=100) + 1
        pr = pull_request_body(number, head_ref=data["head"], base_ref=data["base"], repo=f"{o}/{r}")
        pr.update(title=data["title"], body=data.get("body"), draft=bool(data.get("draft")))
        self.pulls[number] = pr
        return httpx.Response(201, json=pr)

    def _reply(self, request: httpx.Request, n: str, cid: str) -> httpx.Response:
        data = self._record(request)
        body = copy.deepcopy(rest_body("pull-request-review-comment"))
        body.update(id=self._new_id(), body=data["body"], in_reply_to_id=int(cid))
        return httpx.Response(201, json=body)

    def _check_run(self, request: httpx.Request, **_: Any) -> httpx.Response:
        data = self._record(request)
        body = copy.deepcopy(rest_body("check-run"))
        body.update(id=self._new_id(), name=data.get("name", body["name"]))
        return httpx.Response(201, json=body)
