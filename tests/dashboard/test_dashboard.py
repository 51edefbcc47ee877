"""The dashboard's pages, its access rule, and the reward curves."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.jobs.memory_queue import InMemoryJobQueue
from tests.admin.conftest import TOKEN, make_settings
from tests.dashboard.data import ISSUE, LESSON
from tests.builders import T0
from tests.webhooks.conftest import make_client
from webhooks.dashboard import COOKIE, reward_curve_svg, session_value


def test_the_overview_shows_runs_curves_leaderboard_and_top_issues(open_client):
    page = open_client.get("/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="curve"') == 2  # one per repository
    assert "acme/calc" in html and "acme/web" in html
    assert 'href="/dashboard/runs/calc-run-1"' in html and "web-run-6" in html
    board = html.split("Model leaderboard", 1)[1].split("Top issues", 1)[0]
    assert board.index("qwen2.5-coder:7b") < board.index("deepseek-coder:6.7b")  # the better posterior first
    assert ISSUE in html.split("Top issues", 1)[1]
    assert "<script" not in html


def test_root_is_setup_until_an_app_is_configured_then_the_dashboard(tmp_path, github):
    unconfigured = make_settings(tmp_path, admin_token=None, github_app_id=None, github_private_key=None, github_webhook_secret=None)
    with make_client(unconfigured, InMemoryJobQueue()) as client:
        assert "setup code" in client.get("/").text  # the registration itself needs proof of ownership
        assert "<h1>Dashboard</h1>" in client.get("/dashboard").text  # always there
    with make_client(make_settings(tmp_path, admin_token=None), InMemoryJobQueue()) as client:
        home = client.get("/").text
    assert "<h1>Dashboard</h1>" in home and "aura-sicd is running as GitHub App" in home


def test_a_run_page_lists_its_episodes(open_client):
    html = open_client.get("/dashboard/runs/calc-run-1").text
    assert "calc-run-1-ep1" in html and "exhausted" in html
    assert re.search(r"<span>Episodes</span><strong>1</strong>", html)
    assert open_client.get("/dashboard/runs/nope").status_code == 404


def test_an_episode_page_shows_the_iteration_timeline(open_client):
    page = open_client.get("/dashboard/runs/calc-run-3/calc-run-3-ep1")
    assert page.status_code == 200
    html = page.text
    assert html.count('<section class="step') == 2
    assert "Make add() add (first try)" in html and "add() subtracted; the tests expect a sum." in html
    assert "<code>pytest</code>" in html and "2 passed, 2 failed" in html and "4 passed, 0 failed" in html
    assert LESSON in html and "Keep calc.py free of imports." in html  # guidance out, guidance in
    assert '<span class="badge approved">chosen</span>' in html
    assert "0.810" in html  # the approved attempt's reward
    assert open_client.get("/dashboard/runs/calc-run-3/nope").status_code == 404


def test_with_a_token_the_dashboard_needs_it_once(tmp_path, github):
    with make_client(make_settings(tmp_path), InMemoryJobQueue()) as client:
        refused = client.get("/dashboard/runs/x")
        assert refused.status_code == 401 and 'name="token"' in refused.text and 'value="/dashboard/runs/x"' in refused.text
        assert client.get("/dashboard?token=wrong").status_code == 401
        assert client.post("/dashboard/login", data={"token": "wrong"}).status_code == 401
        signed = client.get("/dashboard?token=" + TOKEN + "&x=1", follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard?x=1"
        cookie = signed.cookies[COOKIE]
        assert cookie == session_value(TOKEN) and TOKEN not in cookie
        assert "httponly" in signed.headers["set-cookie"].lower() and "samesite=lax" in signed.headers["set-cookie"].lower()
        assert client.get("/dashboard").status_code == 200  # the client keeps the cookie
        client.cookies.clear()
        login = client.post("/dashboard/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/dashboard"  # never off-site
        assert client.get("/").status_code == 200


def test_reward_curve_svg_plots_each_scored_attempt_and_the_rolling_mean():
    points = [(T0 + timedelta(hours=i), r, r >= 0.75) for i, r in enumerate([0.2, 0.5, 0.8, 0.9])]
    svg = str(reward_curve_svg(points, title="calc <rewards>"))
    assert svg.count("<circle") == 4 and svg.count('class="approved"') == 2
    assert "<polyline" in svg and "calc &lt;rewards&gt;" in svg
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', svg)]
    assert ys == sorted(ys, reverse=True)  # higher reward, higher on the plot
    assert "no scored attempts yet" in str(reward_curve_svg([]))
    same_time = str(reward_curve_svg([(T0, 0.5, False), (T0, 0.6, False)]))
    assert len(set(re.findall(r'cx="([\d.]+)"', same_time))) == 2  # spread when they share a moment
