"""Git's smart HTTP protocol on 127.0.0.1, served by `git http-backend`, with faults on demand.

Repositories live under `root` as `<owner>/<name>.git`. Every request is recorded with its
`Authorization` header (so a test sees where the token went); `fail_pushes` answers that many
`git-receive-pack` POSTs with HTTP 500, as a GitHub incident would.
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.servers import free_port


class GitHTTPServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.fail_pushes = 0
        self.failed_pushes = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                outer.requests.append((self.command, parts.path, self.headers.get("authorization")))
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.command == "POST" and parts.path.endswith("/git-receive-pack") and outer.fail_pushes > 0:
                    outer.fail_pushes -= 1
                    outer.failed_pushes += 1
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                env = {"GIT_PROJECT_ROOT": str(outer.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": parts.path,
                       "QUERY_STRING": parts.query, "REQUEST_METHOD": self.command, "REMOTE_USER": "bot",
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("content-type", ""),
                       "CONTENT_LENGTH": str(len(body)), "GIT_HTTP_MAX_REQUEST_BUFFER": "100M",
                       "PATH": "/usr/local/bin:/usr/bin:/bin"}
                if self.headers.get("content-encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["content-encoding"]
                if self.headers.get("git-protocol"):
                    env["HTTP_GIT_PROTOCOL"] = self.headers["git-protocol"]
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def __enter__(self) -> GitHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
