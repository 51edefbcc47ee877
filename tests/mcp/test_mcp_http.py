"""`aura-sicd mcp --http HOST:PORT`: streamable HTTP with the SDK's client; bad arguments exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bot.cli import main
from tests.e2e.servers import free_port
from tests.repos import CALC_FILES, make_repo
from tests.wait import answers, still_running, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http_server(tmp_path: Path):
    port = free_port()
    make_repo(tmp_path / "repos" / "calc", CALC_FILES)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "OLLAMA_"))},
           "PYTHONPATH": str(ROOT), "AURA_DATA_DIR": str(tmp_path / "data")}
    with open(tmp_path / "mcp.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "mcp", "--http", f"127.0.0.1:{port}", "--root",
                                    str(tmp_path / "repos")], env=env, cwd=tmp_path, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        def ready() -> bool:
            still_running(process, "aura-sicd mcp --http", lambda: (tmp_path / "mcp.log").read_text())
            return answers(url, status=None)

        wait_until(ready, timeout=30, interval=0.1, what="aura-sicd mcp --http to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_streamable_http_serves_the_tools(http_server):
    async with streamable_http_client(http_server) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        runs = await session.call_tool("episodes", {})
        outside = await session.call_tool("check", {"repo_path": "/etc"})
    assert "improve" in tools and tools["code_feedback"].inputSchema["required"] == ["file_path", "code"]
    assert runs.structuredContent == {"runs": [], "episodes": []}
    assert outside.isError and "outside the roots" in outside.content[0].text


@pytest.mark.parametrize(("args", "message"), [
    (["--http", "localhost"], "--http needs HOST:PORT"),
    (["--root", "/no/such/dir"], "--root /no/such/dir is not a directory"),
])
def test_bad_arguments_exit_2(args, message, capsys):
    assert main(["mcp", *args]) == 2
    assert message in capsys.readouterr().err
