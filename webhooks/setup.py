"""First run: register the GitHub App through GitHub's manifest flow, from a page at `/`.

GET /                 no app configured: a button that posts our manifest to GitHub; else the app's status
GET /setup/callback   GitHub redirects here with a one-time code; we exchange it for the app id, private
                      key and webhook secret, store them in the data directory (0600) and start serving.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from githubkit import GitHub
from githubkit.exception import GitHubException
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from bot.github.client import AppCredentials, credentials_path, save_credentials
from webhooks.runtime import Runtime

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

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


async def index(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
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
    request.app.state.setup_states.discard(state)
    try:
        async with GitHub(base_url=runtime.settings.github_api_url, timeout=httpx.Timeout(30.0)) as gh:
            data = (await gh.rest.apps.async_create_from_manifest(code)).json()
    except GitHubException as exc:
        return _error(request, f"GitHub did not accept the registration code: {exc!r}. Start again.", 502)
    credentials = AppCredentials(
        app_id=data["id"],
        private_key=SecretStr(data["pem"]),
        webhook_secret=SecretStr(data["webhook_secret"]),
        slug=data.get("slug"),
        html_url=data.get("html_url"),
    )
    path = save_credentials(runtime.settings.data_dir, credentials)
    runtime.configure(credentials)
    return templates.TemplateResponse(
        request, "registered.html",
        {"app_id": credentials.app_id, "slug": credentials.slug, "html_url": credentials.html_url, "path": str(path)},
    )


async def _installations(runtime: Runtime) -> list:
    return await asyncio.to_thread(runtime.github_store.list_installations)


def _error(request: Request, message: str, status_code: int) -> Response:
    return templates.TemplateResponse(request, "error.html", {"message": message}, status_code=status_code)
