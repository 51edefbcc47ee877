"""The setup phase's only way out: an HTTP proxy that reaches the package registries and nothing else.

The setup runs in a network namespace of its own (bubblewrap `--unshare-net`, Docker `network=none`):
it has a loopback interface and no route anywhere. This module's `EgressProxy`, running in the bot's
process, listens on a Unix socket in a directory that is bind-mounted into the sandbox; inside, a small
forwarder (sandbox/forwarder.py) listens on 127.0.0.1 and passes each connection to that socket, and the
setup gets `HTTP_PROXY`/`HTTPS_PROXY` pointing at the forwarder. pip, npm, Go, cargo, Maven and Composer
all honour those variables.

The proxy accepts `CONNECT host:port` (HTTPS) and absolute-form `GET http://host/...` requests when

- the host matches the allow-list (`AURA_SANDBOX_SETUP_EGRESS_ALLOW`: globs such as `*.pythonhosted.org`,
  by default the public registries of every language plan, plus the hosts of the registry variables the
  operator passes through, e.g. `PIP_INDEX_URL`), on port 443 or 80 (or the port an entry names), and
- every address the host resolves to is public: loopback, private (RFC 1918, unique local), link-local
  (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast and unspecified addresses are refused,
  whatever the allow-list says. `AURA_SANDBOX_SETUP_EGRESS_PRIVATE_HOSTS` names hosts (an internal mirror)
  that may resolve to private addresses; loopback and link-local stay refused even for them.

The proxy connects to the address it checked, so a host that resolves differently a moment later (DNS
rebinding) gains nothing. When the bot itself reaches the internet through a proxy (`HTTPS_PROXY` in its
environment), connections are chained through it. Every refusal is logged and kept in `refusals`, so a
failed setup can say what it was not allowed to reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger("sandbox.egress")

SOCKET_NAME = "proxy.sock"
MOUNT_DIR = "/run/aura-egress"  # where the socket's directory appears inside the sandbox
FORWARDER_PORT = 3128  # the forwarder's port on the sandbox's own loopback
MAX_HEADER_BYTES = 16 * 1024
CONNECT_TIMEOUT_S = 30.0

# the registries the language plans install from (sandbox/plans.py, sandbox/languages/)
DEFAULT_ALLOW = [
    "pypi.org", "files.pythonhosted.org",  # Python
    "registry.npmjs.org", "registry.yarnpkg.com", "repo.yarnpkg.com",  # JavaScript
    "proxy.golang.org", "sum.golang.org",  # Go
    "crates.io", "index.crates.io", "static.crates.io",  # Rust
    "repo.maven.apache.org", "repo1.maven.org", "plugins.gradle.org", "plugins-artifacts.gradle.org",
    "services.gradle.org", "downloads.gradle.org",  # Java
    "repo.packagist.org", "packagist.org",  # PHP
    "rubygems.org", "index.rubygems.org",  # Ruby
]
# the variables whose URLs name a registry the operator chose; their hosts join the allow-list
REGISTRY_VARIABLES = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "npm_config_registry", "GOPROXY"]
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY",
                   "all_proxy"]

NEVER = [ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "::1/128",  # loopback: the model server, the bot, a database on this host
    "169.254.0.0/16", "fe80::/10",  # link-local: cloud metadata
    "0.0.0.0/8", "::/128",  # unspecified ("this host")
    "224.0.0.0/4", "ff00::/8", "255.255.255.255/32",  # multicast, broadcast
)]
PRIVATE = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10",
)]


def registry_hosts(environ: dict[str, str]) -> list[str]:
    """The hosts of the registry variables that are set (`GOPROXY` may list several, `direct`/`off` aside)."""
    hosts = []
    for name in REGISTRY_VARIABLES:
        for url in environ.get(name, "").replace(",", " ").replace("|", " ").split():
            host = urlsplit(url).hostname
            if host:
                hosts.append(host.lower())
    return hosts


def refused_address(address: str, *, private_ok: bool = False) -> str | None:
    """Why the sandbox may not connect to `address`, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for network in NEVER:
        if ip in network:
            return f"{ip}, a loopback, link-local or special address"
    if not private_ok:
        for network in PRIVATE:
            if ip in network:
                return f"{ip}, a private address"
    return None


class Refused(Exception):
    pass


class EgressProxy:
    """The proxy of one setup phase; `async with EgressProxy(...)` starts it in a fresh directory."""

    def __init__(self, allow: list[str], *, base_dir: Path, private_hosts: list[str] | None = None,
                 upstream: str | None = None, owner: int | None = None):
        self.allow = [entry.strip().lower() for entry in allow if entry.strip()]
        self.private_hosts = [h.strip().lower() for h in private_hosts or [] if h.strip()]
        self.upstream = urlsplit(upstream) if upstream else None
        self.base_dir = base_dir
        self.owner = owner
        self.dir: Path | None = None
        self.refusals: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def socket_path(self) -> Path:
        assert self.dir is not None
        return self.dir / SOCKET_NAME

    async def __aenter__(self) -> EgressProxy:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.dir = self.base_dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.dir.mkdir(mode=0o755)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o666)  # the sandbox's uid connects
        return self

    async def __aexit__(self, *exc) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- the policy -------------------------------------------------------------------------------------

    def allowed_host(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.allow:
            pattern, _, entry_port = entry.partition(":")
            ports = {int(entry_port)} if entry_port.isdigit() else {443, 80}
            if port in ports and fnmatch.fnmatchcase(host, pattern):
                return True
        return False

    async def _resolve(self, host: str, port: int) -> str:
        """The address to connect to, after checking the host and every address it resolves to (through
        an upstream proxy, which resolves names itself: the host, and an address given literally)."""
        if not self.allowed_host(host, port):
            raise Refused(f"{host}:{port} is not on the setup's allow-list (AURA_SANDBOX_SETUP_EGRESS_ALLOW)")
        if self.upstream is not None:
            with contextlib.suppress(ValueError):
                if reason := refused_address(host, private_ok=host.lower() in self.private_hosts):
                    raise Refused(reason)
            return host
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=0, proto=6)
        except OSError as exc:
            raise Refused(f"{host} does not resolve: {exc}") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        private_ok = host.lower() in self.private_hosts
        for address in addresses:
            if reason := refused_address(address, private_ok=private_ok):
                raise Refused(f"{host} resolves to {reason}")
        if not addresses:
            raise Refused(f"{host} has no address")
        return addresses[0]

    # --- serving ----------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            return await _answer(writer, 431, "request header too large")
        line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = line.decode("ascii").split(" ")
        except (UnicodeDecodeError, ValueError):
            return await _answer(writer, 400, "not an HTTP proxy request")
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            first = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                return await _answer(writer, 400, "only CONNECT and absolute http:// requests are proxied")
            host, port_text = url.hostname, str(url.port or 80)
            origin = (url.path or "/") + (f"?{url.query}" if url.query else "")
            first = f"{method} {origin} {version}\r\n".encode("ascii") + rest
        if not port_text.isdigit():
            return await _answer(writer, 400, "no port")
        port = int(port_text)
        try:
            address = await self._resolve(host, port)
            up_reader, up_writer = await self._open(host, address, port)
        except Refused as exc:
            self.refusals.append(str(exc))
            logger.warning("setup egress refused: %s", exc)
            return await _answer(writer, 403, f"aura-sicd refused: {exc}")
        except (OSError, asyncio.TimeoutError) as exc:
            return await _answer(writer, 502, f"cannot reach {host}:{port}: {exc}")
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(first)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _open(self, host: str, address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream is None or not self.upstream.hostname:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_S)
        # the bot's own way out: CONNECT through its proxy (which resolves the name itself)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.upstream.hostname, self.upstream.port or 8080), CONNECT_TIMEOUT_S)
        writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT_S)
        if b" 200" not in answer.split(b"\r\n", 1)[0]:
            writer.close()
            status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            raise OSError(f"the upstream proxy answered {status}")
        return reader, writer


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 502: "Bad Gateway"}[status]
    body = (text + "\n").encode()
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                 "Connection: close\r\n\r\n".encode() + body)
    with contextlib.suppress(OSError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.CancelledError):
        writer.close()
        raise


def forwarder_command(python: str, argv: list[str]) -> list[str]:
    """`argv` run after the forwarder listens on the sandbox's loopback (it detaches once listening)."""
    source = (Path(__file__).parent / "forwarder.py").read_text(encoding="utf-8")
    script = '"$0" -c "$1" "$2" "$3" && shift 3 && exec "$@"'
    return ["sh", "-c", script, python, source, f"{MOUNT_DIR}/{SOCKET_NAME}", str(FORWARDER_PORT), *argv]


def proxy_env() -> dict[str, str]:
    """What the setup's tools read to use the forwarder; NO_PROXY is empty, so nothing goes around it."""
    url = f"http://127.0.0.1:{FORWARDER_PORT}"
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url, "NO_PROXY": "",
            "no_proxy": "", "npm_config_proxy": url, "npm_config_https_proxy": url}


@contextlib.asynccontextmanager
async def open_egress(settings, base_dir: Path) -> AsyncIterator[EgressProxy]:
    """The proxy for one setup phase under `settings` (sandbox.config.SandboxSettings)."""
    environ = dict(os.environ)
    allow = [*settings.setup_egress_allow, *registry_hosts(settings.setup_env())]
    upstream = environ.get("HTTPS_PROXY") or environ.get("https_proxy") or None
    async with EgressProxy(allow, base_dir=base_dir, private_hosts=settings.setup_egress_private_hosts,
                           upstream=upstream) as proxy:
        yield proxy


def with_refusals(result, refusals: list[str]):
    """A setup command's result (sandbox.base.CommandResult) with what the proxy refused appended to its output."""
    if not refusals:
        return result
    lines = "\n".join(f"aura-sicd: setup egress refused {r}" for r in dict.fromkeys(refusals))
    return result.model_copy(update={"output": f"{result.output.rstrip()}\n{lines}\n"})
