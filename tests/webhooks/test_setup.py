"""First run: the registration page, GitHub's manifest flow, and the credentials it leaves behind."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import httpx
import respx
import yaml

from bot.config import Settings
from bot.jobs.memory_queue import InMemoryJobQueue
from tests.fakes.github import rest_body, webhook_bytes
from tests.webhooks.conftest import deliver, make_client
from webhooks.setup import app_manifest, web_url

ROOT = Path(__file__).resolve().parents[2]


def _unconfigured(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'aura.db'}",
                    public_url="https://aura.example.com")


def test_registration_page_then_callback_stores_credentials_and_starts_serving(tmp_path):
    settings = _unconfigured(tmp_path)
    with make_client(settings, InMemoryJobQueue()) as client:
        assert deliver(client, "ping", webhook_bytes("ping")).status_code == 503  # nothing to verify with yet
        page = unlock(client, settings)
        assert page.status_code == 200
        action = html.unescape(re.search(r'<form action="([^"]+)" method="post">', page.text).group(1))
        assert action.startswith("https://github.com/settings/apps/new?state=")
        state = action.split("state=")[1]
        manifest = json.loads(html.unescape(re.search(r'name="manifest" value="([^"]+)"', page.text).group(1)))
        assert manifest == app_manifest("https://aura.example.com")
        assert manifest["hook_attributes"]["url"] == "https://aura.example.com/webhooks/github"

        conversion = rest_body("integration-from-manifest")
        conversion["webhook_secret"] = "secret-from-github"
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post("https://api.github.com/app-manifests/the-code/conversions").mock(
                return_value=httpx.Response(201, json=conversion))
            done = client.get(f"/setup/callback?code=the-code&state={state}")
        assert done.status_code == 200 and route.call_count == 1
        assert "Registered" in done.text

        path = settings.data_dir / "github-app.json"
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        saved = json.loads(path.read_text())
        assert (saved["app_id"], saved["webhook_secret"]) == (conversion["id"], "secret-from-github")
        assert saved["private_key"] == conversion["pem"]
        # serving now, with the new secret
        assert deliver(client, "ping", webhook_bytes("ping"), secret="secret-from-github").status_code == 200
        assert "is running" in client.get("/").text


def unlock(client, settings: Settings):
    """Prove ownership with the setup code the server wrote to its data directory; the registration page."""
    code = (settings.data_dir / "setup-code").read_text().strip()
    return client.post("/setup", data={"code": code})


def test_callback_with_an_unknown_state_is_refused(tmp_path):
    with make_client(_unconfigured(tmp_path), InMemoryJobQueue()) as client:
        response = client.get("/setup/callback?code=x&state=forged")
    assert response.status_code == 400
    assert "Start again" in response.text


def test_organization_registration(tmp_path):
    settings = _unconfigured(tmp_path)
    with make_client(settings, InMemoryJobQueue()) as client:
        unlock(client, settings)
        page = client.get("/?org=octo-org")
    assert 'action="https://github.com/organizations/octo-org/settings/apps/new?state=' in page.text


def test_enterprise_server_web_url():
    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://ghe.example.com/api/v3") == "https://ghe.example.com"


def test_app_yml_matches_the_manifest_we_register():
    declared = yaml.safe_load((ROOT / "app.yml").read_text())
    manifest = app_manifest("https://aura.example.com")
    assert declared["default_permissions"] == manifest["default_permissions"]
    assert sorted(declared["default_events"]) == sorted(manifest["default_events"])
    assert declared["public"] is False
    assert "installation" not in declared["default_events"]  # GitHub refuses it; it is sent anyway


# --- issue 10, item 7: proof of ownership; an unreachable GitHub keeps the registration ---------------


def test_a_stranger_gets_no_registration_even_with_an_admin_token_set(tmp_path):
    settings = _unconfigured(tmp_path).model_copy(update={"admin_token": "the-admin-token"})
    with make_client(settings, InMemoryJobQueue()) as client:
        page = client.get("/")
        assert page.status_code == 200 and "setup code" in page.text and "manifest" not in page.text
        assert client.app.state.setup_states == set()  # no state handed out, so no callback can succeed
        wrong = client.post("/setup", data={"code": "guess"}, follow_redirects=False)
        assert wrong.status_code == 403 and "manifest" not in wrong.text
        assert client.get("/setup/callback?code=c&state=x").status_code == 400
        # the admin token is proof too
        assert "Register the GitHub App" in client.post("/setup", data={"code": "the-admin-token"}).text


def test_the_setup_code_is_private_survives_a_restart_and_goes_once_registered(tmp_path):
    settings = _unconfigured(tmp_path)
    with make_client(settings, InMemoryJobQueue()):
        path = settings.data_dir / "setup-code"
        first = path.read_text()
        assert oct(os.stat(path).st_mode & 0o777) == "0o600" and len(first.strip()) >= 16
    with make_client(settings, InMemoryJobQueue()) as client:
        assert path.read_text() == first
        state = _state(unlock(client, settings).text)
        with respx.mock() as mock:
            mock.post("https://api.github.com/app-manifests/c/conversions").mock(
                return_value=httpx.Response(201, json=rest_body("integration-from-manifest")))
            assert client.get(f"/setup/callback?code=c&state={state}").status_code == 200
    assert not path.exists()


def _state(page: str) -> str:
    return html.unescape(re.search(r'<form action="([^"]+)" method="post">', page).group(1)).split("state=")[1]


def test_an_unreachable_github_says_so_and_the_registration_can_be_resumed(tmp_path):
    settings = _unconfigured(tmp_path)
    with make_client(settings, InMemoryJobQueue()) as client:
        state = _state(unlock(client, settings).text)
        url = f"/setup/callback?code=the-code&state={state}"
        with respx.mock() as mock:
            route = mock.post("https://api.github.com/app-manifests/the-code/conversions")
            route.mock(side_effect=httpx.ConnectError("Name or service not known"))
            down = client.get(url)
            assert down.status_code == 502
            assert "cannot be reached" in down.text and "Nothing is lost" in down.text
            assert html.escape(url) in down.text  # the "try again" link
            route.mock(return_value=httpx.Response(503, json={"message": "unavailable"}))
            assert "answered HTTP 503" in client.get(url).text
            route.mock(return_value=httpx.Response(201, json=rest_body("integration-from-manifest")))
            assert client.get(url).status_code == 200  # the same link, once GitHub is back
        assert client.app.state.runtime.credentials is not None


def test_an_expired_code_is_refused_and_its_state_spent(tmp_path):
    settings = _unconfigured(tmp_path)
    with make_client(settings, InMemoryJobQueue()) as client:
        state = _state(unlock(client, settings).text)
        with respx.mock() as mock:
            mock.post("https://api.github.com/app-manifests/old/conversions").mock(
                return_value=httpx.Response(404, json={"message": "Not Found"}))
            gone = client.get(f"/setup/callback?code=old&state={state}")
        assert gone.status_code == 502 and "expired" in gone.text and "Try again" not in gone.text
        assert state not in client.app.state.setup_states
