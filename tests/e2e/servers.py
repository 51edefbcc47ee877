"""Fake GitHub and Ollama as real HTTP servers on 127.0.0.1, for tests that run the bot as a process.

The fakes of tests/fakes (respx routes) answer here too: a tiny ASGI app turns each incoming request
into an `httpx.Request` and lets the fake's router answer it, under uvicorn in a thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import httpx
import respx
import uvicorn

from tests.wait import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RouterServer:
    """Serve a respx router over HTTP. `before(request)` may block (slow a reply) or record things."""

    def __init__(self, router: respx.Router, port: int, *, before: Callable[[httpx.Request], None] | None = None) -> None:
        self.router = router
        self.port = port
        self.before = before
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", access_log=False, interface="asgi3",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope, receive, send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode()
        url = f"{self.base_url}{scope['path']}" + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        if self.before is not None:
            import asyncio

            await asyncio.to_thread(self.before, request)
        try:
            response = self.router.handler(request)
        except Exception as exc:  # an unmatched route: say so, like a server would
            response = httpx.Response(500, json={"message": f"fake server: {exc!r}"})
        content = response.read()
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(b"content-type", response.headers.get("content-type", "application/json").encode()),
                                (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def __enter__(self) -> RouterServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10, interval=0.02,
                   what=f"the fake server on {self.base_url} to start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
