"""The setup phase reaches package registries through the egress proxy and nothing else (issue 18).

Real bubblewrap and Docker sandboxes; the only servers contacted are a loopback server this test starts
(which must never hear from the sandbox) and the package registry this machine installs from. The
metadata address 169.254.169.254 is refused before anything is sent: no packet leaves for it.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from sandbox import SetupError, open_sandbox

from .conftest import settings_for, write_tree


@pytest.fixture
def local_server():
    """An HTTP server on 127.0.0.1 standing for the model server or the bot's own port; counts its hits."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"secret model API")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


def repo_with_setup(root: Path, setup: str) -> Path:
    return write_tree(root, {
        ".github/aura-sicd.yml": yaml.safe_dump({"setup": setup, "checks": [{"name": "ok", "run": "true"}]}),
        "pyproject.toml": "[project]\nname = 'probe'\nversion = '0'\n",
    })


def fetch(url: str) -> str:
    return f"python -c \"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read())\""


def connect(host: str, port: int) -> str:
    return f"python -c \"import socket; socket.create_connection(('{host}', {port}), timeout=5); print('connected')\""


@pytest.mark.parametrize("how", ["proxied", "direct"])
async def test_setup_cannot_reach_a_server_on_the_hosts_loopback(backend, tmp_path, local_server, how):
    port, hits = local_server
    setup = fetch(f"http://127.0.0.1:{port}/api/create") if how == "proxied" else connect("127.0.0.1", port)
    # even an allow-list that names it does not open loopback
    settings = settings_for(backend, setup_egress_allow=["pypi.org", "files.pythonhosted.org", "127.0.0.1:*", f"127.0.0.1:{port}", "localhost"])
    with pytest.raises(SetupError) as info:
        async with open_sandbox(settings, repo_with_setup(tmp_path / "repo", setup)):
            pass
    assert hits == []
    if how == "proxied":
        assert "setup egress refused 127.0.0.1 resolves to 127.0.0.1, a loopback" in info.value.output
    else:
        assert "refused" in info.value.output.lower() or "unreachable" in info.value.output.lower()


@pytest.mark.parametrize("setup", [fetch("http://169.254.169.254/latest/meta-data/"), connect("169.254.169.254", 80),
                                   fetch("http://10.1.2.3/"), fetch("https://example.com/")])
async def test_setup_cannot_reach_cloud_metadata_private_addresses_or_other_hosts(backend, tmp_path, setup):
    settings = settings_for(backend, setup_egress_allow=["pypi.org", "files.pythonhosted.org", "169.254.169.254", "10.1.2.3"])
    with pytest.raises(SetupError) as info:
        async with open_sandbox(settings, repo_with_setup(tmp_path / "repo", setup)):
            pass
    assert "connected" not in info.value.output and "b'" not in info.value.output


async def test_a_package_install_through_the_allow_list_works(backend, tmp_path):
    """The default allow-list (PyPI among the registries) lets a real install through, on this machine too."""
    from .test_setup_cache import _remove_environment

    settings = settings_for(backend, memory_mb=1024, pids=256)
    marker = uuid.uuid4().hex  # a dependency hash of its own: the setup really runs, no cached environment
    repo = repo_with_setup(tmp_path / "repo", f"echo {marker} && pip download --no-deps --no-cache-dir -d /tmp/dl "
                                              "iniconfig==2.0.0 && ls /tmp/dl")
    environment = None
    try:
        async with open_sandbox(settings, repo) as box:
            environment = box._backend.image if backend == "docker" else box._backend.env_dir
            assert box.backend_name == backend
    finally:
        if environment is not None:
            _remove_environment(backend, environment)


def test_the_address_rules_and_the_operators_registries():
    from sandbox.egress import EgressProxy, refused_address, registry_hosts

    for address in ("127.0.0.1", "127.8.9.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::ffff:127.0.0.1",
                    "10.0.0.5", "172.16.3.4", "192.168.1.1", "fd00::1", "100.64.0.1"):
        assert refused_address(address), address
    assert refused_address("10.0.0.5", private_ok=True) is None  # an internal mirror the operator named
    assert refused_address("169.254.169.254", private_ok=True)  # never metadata, whoever names it
    for address in ("151.101.0.223", "203.0.113.80", "2a04:4e42::223"):  # PyPI, and this machine's registry
        assert refused_address(address) is None, address
    assert registry_hosts({"PIP_INDEX_URL": "https://user:pw@pypi.corp.example/simple",
                           "GOPROXY": "https://goproxy.corp.example,direct"}) == ["pypi.corp.example", "goproxy.corp.example"]
    proxy = EgressProxy(["*.pythonhosted.org", "pypi.org", "nexus.corp:8081"], base_dir=Path("/nonexistent"))
    assert proxy.allowed_host("files.pythonhosted.org", 443) and proxy.allowed_host("PyPI.org.", 80)
    assert not proxy.allowed_host("pypi.org", 22) and not proxy.allowed_host("evilpypi.org", 443)
    assert proxy.allowed_host("nexus.corp", 8081) and not proxy.allowed_host("nexus.corp", 443)


def test_the_hosts_proxy_variables_never_enter_the_setup(monkeypatch):
    from sandbox import SandboxSettings

    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.corp.example/simple")
    env = SandboxSettings(_env_file=None).setup_env()
    assert env["PIP_INDEX_URL"] == "https://pypi.corp.example/simple"
    assert not {"HTTPS_PROXY", "NO_PROXY"} & set(env)


def test_secret_values_cover_whole_values_and_the_credentials_inside_urls():
    from sandbox.scrub import REDACTED, scrub, secret_values

    environ = {"PIP_INDEX_URL": "https://ci:p4ssw0rd-x@pypi.corp/simple", "NPM_TOKEN": "npm_abcdef123456",
               "HTTPS_PROXY": "http://proxyuser:hunter22@proxy:3128", "PIP_DEFAULT_TIMEOUT": "180"}
    values = secret_values(["PIP_INDEX_URL", "NPM_TOKEN", "PIP_DEFAULT_TIMEOUT"], environ)
    text = ("Looking in indexes: https://ci:****@pypi.corp/simple\nURL https://ci:p4ssw0rd-x@pypi.corp/simple\n"
            "auth p4ssw0rd-x token npm_abcdef123456 proxy hunter22 took 180 s")
    out = scrub(text, values)
    assert "p4ssw0rd-x" not in out and "npm_abcdef123456" not in out and "hunter22" not in out
    assert out.count(REDACTED) == 4 and "took 180 s" in out
