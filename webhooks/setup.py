"""First run: register the GitHub App through GitHub's manifest flow, from a page at `/`.

GET /                 no app configured: a button that posts our manifest to GitHub; else the app's status
POST /setup           proof of ownership first: the setup code the server prints at start (also in
                      `<data dir>/setup-code`, 0600), or the admin token; a cookie then remembers it
GET /setup/callback   GitHub redirects here with a one-time code; we exchange it for the app id, private
                      key and webhook secret, store them in the data directory (0600) and start serving.

Whoever registers the App decides where its credentials come from, so a stranger who reaches a fresh
server must not be able to: hence the code, as Jenkins does. If GitHub cannot be reached during the
exchange, the registration stays open (its state is kept, GitHub's code is valid for an hour): the
error page links to the same callback to try again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.github.client import AppCredentials, credentials_path, save_credentials
from webhooks.runtime import Runtime

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

SETUP_CODE_FILE = "setup-code"
COOKIE = "aura_setup"

APP_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write", "checks": "write", "metadata": "read"}
# `installation` and `installation_repositories` are sent to every App without subscribing; GitHub refuses
# a manifest that lists them ("Default events unsupported: installation").
APP_EVENTS = ["issues", "issue_comment", "pull_request", "pull_request_review", "pull_request_review_comment"]


def app_manifest(public_url: str, name: str = "aura-sicd") -> dict:
    base = public_url.rstrip("/")
    return {
        "name": name,
        "url": base,
        "hook_attributes": {"url": f"{base}/webhooks/github", "active": True},
        "redirect_url": f"{base}/setup/callback",
        "public": False,
        "default_permissions": dict(APP_PERMISSIONS),
        "default_events": list(APP_EVENTS),
    }


def web_url(api_url: str) -> str:
    """github.com for api.github.com; `https://host` for GitHub Enterprise Server's `https://host/api/v3`."""
    parts = urlsplit(api_url)
    if parts.netloc == "api.github.com":
        return "https://github.com"
    return f"{parts.scheme}://{parts.netloc}"


def setup_code(data_dir: Path) -> str:
    """The one-time code that proves who owns this server, kept in the data directory (0600) until an
    App is registered, so a restart shows the same one."""
    path = data_dir / SETUP_CODE_FILE
    try:
        code = path.read_text().strip()
        if code:
            return code
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    code = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(code + "\n")
    return code


def announce_setup_code(public_url: str, data_dir: Path) -> str:
    code = setup_code(data_dir)
    log.warning("no GitHub App configured: open %s/ and enter the setup code %s (also in %s) or the admin token",
                public_url.rstrip("/"), code, data_dir / SETUP_CODE_FILE)
    return code


def _secrets(runtime: Runtime, request: Request) -> list[str]:
    return [c for c in (getattr(request.app.state, "setup_code", None), runtime.settings.admin_token) if c]


def _cookie_value(secret: str) -> str:
    return hmac.new(secret.encode(), b"aura-sicd setup", hashlib.sha256).hexdigest()


def _proven(request: Request) -> bool:
    runtime: Runtime = request.app.state.runtime
    cookie = request.cookies.get(COOKIE, "")
    return any(hmac.compare_digest(cookie.encode(), _cookie_value(s).encode()) for s in _secrets(runtime, request))


async def unlock(request: Request) -> Response:
    """`POST /setup`: the setup code or the admin token opens the registration page (a cookie remembers it)."""
    runtime: Runtime = request.app.state.runtime
    if runtime.credentials is not None:
        return RedirectResponse("/", status_code=303)
    given = str((await request.form()).get("code", "")).strip()
    match = next((s for s in _secrets(runtime, request) if given and hmac.compare_digest(given.encode(), s.encode())), None)
    if match is None:
        log.warning("setup: a wrong setup code from %s", request.client.host if request.client else "?")
        return templates.TemplateResponse(request, "setup_unlock.html", {"error": "That is not the setup code.",
                                          "code_file": str(runtime.settings.data_dir / SETUP_CODE_FILE)}, status_code=403)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, _cookie_value(match), max_age=3600, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


async def index(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    if runtime.credentials is None and not _proven(request):
        return templates.TemplateResponse(request, "setup_unlock.html",
                                          {"error": None, "code_file": str(settings.data_dir / SETUP_CODE_FILE)})
    if runtime.credentials is not None:
        creds = runtime.credentials
        return templates.TemplateResponse(
            request, "configured.html",
            {"app_id": creds.app_id, "slug": creds.slug, "html_url": creds.html_url,
             "installations": await _installations(runtime)},
        )
    state = secrets.token_urlsafe(24)
    request.app.state.setup_states.add(state)
    org = request.query_params.get("org", "").strip()
    target = f"{web_url(settings.github_api_url)}/organizations/{org}/settings/apps/new" if org else (
        f"{web_url(settings.github_api_url)}/settings/apps/new"
    )
    return templates.TemplateResponse(
        request, "setup.html",
        {
            "action": f"{target}?{urlencode({'state': state})}",
            "manifest": json.dumps(app_manifest(settings.public_url)),
            "public_url": settings.public_url,
            "org": org,
            "credentials_file": str(credentials_path(settings.data_dir)),
        },
    )


async def callback(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    code = request.query_params.get("code")
    state = request.query_params.get("state")
    if runtime.credentials is not None:
        return _error(request, "An app is already configured; remove its credentials first to register another.", 409)
    if not code or not state or state not in request.app.state.setup_states:
        return _error(request, "This link is not from a registration started here (unknown or missing state). "
                               "Start again from the first page.", 400)
    api = runtime.settings.github_api_url
    try:
        async with GitHub(base_url=api, timeout=httpx.Timeout(30.0), auto_retry=False) as gh:
            data = (await gh.rest.apps.async_create_from_manifest(code)).json()
    except RequestFailed as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:  # GitHub is in trouble, the code is still good: keep the state
            return _error(request, f"GitHub at {api} answered HTTP {status} and did not finish the registration. "
                                   "Nothing is lost: try again in a moment.", 502, retry_url=f"/setup/callback?{request.url.query}")
        request.app.state.setup_states.discard(state)
        return _error(request, f"GitHub did not accept the registration code (HTTP {status}): it may have expired "
                               "(codes last an hour) or been used already. Start again.", 502)
    except GitHubException as exc:  # no answer at all: DNS, refused connection, timeout
        log.warning("setup: GitHub at %s cannot be reached: %r", api, exc)
        return _error(request, f"GitHub at {api} cannot be reached from this server ({type(exc).__name__}). "
                               "Nothing is lost: check the network (or AURA_GITHUB_API_URL) and try again within "
                               "the hour.", 502, retry_url=f"/setup/callback?{request.url.query}")
    request.app.state.setup_states.discard(state)
    credentials = AppCredentials(
        app_id=data["id"],
        private_key=SecretStr(data["pem"]),
        webhook_secret=SecretStr(data["webhook_secret"]),
        slug=data.get("slug"),
        html_url=data.get("html_url"),
    )
    path = save_credentials(runtime.settings.data_dir, credentials)
    runtime.configure(credentials)
    (runtime.settings.data_dir / SETUP_CODE_FILE).unlink(missing_ok=True)  # registered: the code has served
    return templates.TemplateResponse(
        request, "registered.html",
        {"app_id": credentials.app_id, "slug": credentials.slug, "html_url": credentials.html_url, "path": str(path)},
    )


async def _installations(runtime: Runtime) -> list:
    return await asyncio.to_thread(runtime.github_store.list_installations)


def _error(request: Request, message: str, status_code: int, *, retry_url: str | None = None) -> Response:
    return templates.TemplateResponse(request, "error.html", {"message": message, "retry_url": retry_url},
                                      status_code=status_code)
