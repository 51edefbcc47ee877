"""`aura-sicd mcp` as a real stdio server, driven by the MCP SDK's own client.

The server is a subprocess, so the fake Ollama is served over real HTTP (tests/e2e/servers.py); checks
run in the bubblewrap sandbox.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import respx
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CancelledNotification, CancelledNotificationParams, ClientNotification

from tests.e2e.servers import RouterServer, free_port
from tests.fakes.ollama import FakeOllama
from tests.repos import CALC_FILES, DISC, GEN, GOOD_RUBRIC, RIGHT_FIX, git, make_repo

pytestmark = pytest.mark.bwrap

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"improve", "code_feedback", "check", "episodes", "run_summary", "bench_report"}


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    router = respx.Router(assert_all_called=False)
    port = free_port()
    fake = FakeOllama(router, host=f"http://127.0.0.1:{port}").pull(GEN, DISC)
    with RouterServer(router, port):
        yield fake


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "repos"
    make_repo(root / "calc", CALC_FILES)
    return root


@asynccontextmanager
async def mcp_session(tmp_path: Path, ollama: FakeOllama, *args: str, safe_mode: bool = False) -> AsyncIterator[ClientSession]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "OLLAMA_", "SAFE_MODE"))},
        "PYTHONPATH": str(ROOT),
        "OLLAMA_HOST": ollama.host,
        "AURA_DATA_DIR": str(tmp_path / "data"),
        "AURA_SANDBOX_BACKEND": "bwrap",
        "AURA_MAX_ITERATIONS": "2",
        "SAFE_MODE": "1" if safe_mode else "0",
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "bot", "mcp", *args], env=env, cwd=str(tmp_path))
    with open(tmp_path / "mcp-stderr.log", "w") as errlog:  # noqa: ASYNC230 - once, before the server starts
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def test_improve_over_stdio_reports_progress_and_keeps_the_branch(tmp_path, workdir, ollama):
    ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_session(tmp_path, ollama, "--root", str(workdir)) as session:
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        result = await session.call_tool(
            "improve", {"repo_path": "calc", "task": "add() returns the wrong result\nadd(2, 3) should be 5"},
            progress_callback=on_progress)
        assert not result.isError, result.content
        out = result.structuredContent
        assert out["verdict"] == "approved" and not out["dry_run"]
        assert out["pr_title"] == "Aura SICD: add() returns the wrong result"
        assert "## Reward Trace" in out["pr_body"]
        [attempt] = out["reward_trace"]
        assert attempt["status"] == "approved" and attempt["checks"]["tests"] == "passed" and attempt["reward"] > 0.6
        assert "return a + b" in git(workdir / "calc", "show", f"{out['branch']}:calc.py")

        values = [v for v, _, _ in progress]
        assert values == sorted(values) and len(values) >= 3 and progress[-1][0] == 1.0
        assert progress[0][1] == 2.0 and "proposing a change" in progress[0][2]

        summary = await session.call_tool("run_summary", {"run_id": out["run_id"]})
        assert summary.structuredContent["by_status"] == {"approved": 1}
        listed = await session.call_tool("episodes", {"run_id": out["run_id"]})
        assert listed.structuredContent["episodes"][0]["status"] == "approved"
        bench = await session.call_tool("bench_report", {"repo": "calc"})
        assert bench.structuredContent["approved"] == 1

        outside = await session.call_tool("improve", {"repo_path": str(tmp_path), "task": "fix add"})
        assert outside.isError and "outside the roots" in outside.content[0].text
        unknown = await session.call_tool("run_summary", {"run_id": "nope"})
        assert unknown.isError and "unknown run 'nope'" in unknown.content[0].text


async def test_safe_mode_makes_every_improve_a_dry_run(tmp_path, workdir, ollama):
    ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    async with mcp_session(tmp_path, ollama, "--root", str(workdir), safe_mode=True) as session:
        result = await session.call_tool("improve", {"repo_path": str(workdir / "calc"), "task": "fix add"})
    out = result.structuredContent
    assert out["verdict"] == "approved" and out["dry_run"] and out["branch"] is None
    assert "SAFE_MODE is on" in out["notes"][0]
    assert git(workdir / "calc", "branch", "--list", "aura-sicd/*") == ""


async def test_check_and_code_feedback_without_a_repository(tmp_path, workdir, ollama):
    ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    async with mcp_session(tmp_path, ollama, "--root", str(workdir)) as session:
        report = await session.call_tool("check", {"repo_path": "calc"})
        tests = next(c for c in report.structuredContent["checks"] if c["name"] == "tests")
        assert tests["status"] == "failed"
        assert [t["test_id"] for t in tests["failing_tests"]] == ["tests/test_calc.py::test_add"]

        feedback = await session.call_tool("code_feedback", {
            "file_path": "calc.py", "code": CALC_FILES["calc.py"], "tests": CALC_FILES["tests/test_calc.py"],
            "iterations": 2,
        })
        bad_path = await session.call_tool("code_feedback", {"file_path": "../etc/passwd", "code": "x = 1"})

    assert not feedback.isError, feedback.content
    out = feedback.structuredContent
    assert out["verdict"] == "approved" and out["best_reward"] > 0.6
    assert out["improved_code"] == CALC_FILES["calc.py"].replace("a - b", "a + b")
    [attempt] = out["iterations"]
    assert attempt["rubric"]["accuracy"] == 0.95 and "+    return a + b" in attempt["diff"]
    assert out["rewards"] == [attempt["reward"]]
    assert "tests/test_calc.py" in ollama.prompt(ollama.requests_for("generator")[0])
    assert not list((tmp_path / "data" / "feedback").iterdir())  # the throwaway repository is gone
    assert bad_path.isError and "relative path" in bad_path.content[0].text


async def test_a_cancelled_improve_cleans_up_and_is_recorded_as_cancelled(tmp_path, workdir):
    router = respx.Router(assert_all_called=False)
    port = free_port()
    ollama = FakeOllama(router, host=f"http://127.0.0.1:{port}").pull(GEN, DISC)
    ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    scoring, release = threading.Event(), threading.Event()

    def hold_scoring(request: httpx.Request) -> None:
        if b'"title":"Rubric"' in request.content.replace(b" ", b""):
            scoring.set()
            release.wait(timeout=60)

    repo = workdir / "calc"
    with RouterServer(router, port, before=hold_scoring):
        try:
            async with mcp_session(tmp_path, ollama, "--root", str(workdir)) as session:
                call = asyncio.ensure_future(session.call_tool("improve", {"repo_path": "calc", "task": "fix add"}))
                await asyncio.to_thread(scoring.wait, 60)
                assert git(repo, "branch", "--list", "aura-sicd/*")  # mid-episode: its branch exists
                await session.send_notification(ClientNotification(CancelledNotification(
                    params=CancelledNotificationParams(requestId=session._request_id - 1, reason="user stopped it"))))
                with pytest.raises(McpError, match="Request cancelled"):
                    await call
                for _ in range(100):  # the cancelled episode cleans up, then the run is marked
                    runs = (await session.call_tool("episodes", {})).structuredContent["runs"]
                    if runs[0]["status"] == "cancelled":
                        break
                    await asyncio.sleep(0.1)
        finally:
            release.set()
    assert runs[0]["status"] == "cancelled" and runs[0]["kind"] == "mcp"
    assert git(repo, "branch", "--list", "aura-sicd/*") == ""
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
