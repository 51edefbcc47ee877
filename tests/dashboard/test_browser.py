"""The dashboard in a real browser: Debian's chromium driven by Playwright, the app served by uvicorn on
127.0.0.1 with a filled store. Screenshots go to test-artifacts/ (CI keeps them).

Marked `browser` (tests/backends.py): skipped when chromium or Playwright is missing, except with
AURA_REQUIRE_SANDBOXES=1 (CI), where that fails.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from bot.jobs.memory_queue import InMemoryJobQueue
from tests.admin.conftest import TOKEN, make_settings
from tests.backends import CHROMIUM
from tests.dashboard.data import LESSON, fill
from tests.wait import wait_until
from webhooks.app import create_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, dict]]:
    """The app under uvicorn in a thread, a token set, the store filled before serving."""
    from bot.store import Store

    settings = make_settings(tmp_path)
    with Store.open(settings.database_url) as store:
        ids = fill(store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, queue=InMemoryJobQueue(), readiness={}),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    def started() -> bool:
        assert thread.is_alive(), "uvicorn stopped before it started"
        return server.started

    wait_until(started, timeout=20, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}", ids
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.browser
def test_dashboard_and_episode_page_in_chromium(served):
    from playwright.sync_api import sync_playwright

    base, ids = served
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            page.goto(f"{base}/dashboard")
            assert page.get_by_role("heading", name="Sign in").is_visible()
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/dashboard")
            assert page.get_by_role("heading", name="Dashboard", exact=True).is_visible()
            assert page.get_by_role("heading", name="acme/calc").is_visible()
            assert page.locator("svg.curve").count() == 2 and page.locator("svg.curve circle").count() >= 12
            assert page.get_by_role("cell", name="qwen2.5-coder:7b").is_visible()
            assert page.get_by_text("The change does not handle negative numbers.").is_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            page.get_by_role("link", name=ids["acme/calc"]).click()
            page.get_by_role("link", name=f"{ids['acme/calc']}-ep1"[:12]).click()
            assert page.get_by_role("heading", name="Iteration timeline").is_visible()
            assert page.locator("section.step").count() == 2
            assert page.get_by_text("add() subtracted; the tests expect a sum.").first.is_visible()
            assert page.get_by_text(LESSON).first.is_visible()
            assert page.get_by_role("cell", name="pytest").first.is_visible()
            page.screenshot(path=str(ARTIFACTS / "episode.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000 and (ARTIFACTS / "episode.png").stat().st_size > 10_000
