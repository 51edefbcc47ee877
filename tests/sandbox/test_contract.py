"""What every isolating backend must guarantee, run against the real engine and real bubblewrap."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from sandbox import CheckStatus, open_sandbox
from sandbox.config import SandboxSettings

from .conftest import settings_for, write_tree

TINY = {"calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", TINY)


def _host_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
        return s.getsockname()[0]


@pytest.fixture
def host_server():
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


CONNECT = """
import socket, sys
for host, port in [(a.rsplit(':', 1)[0], int(a.rsplit(':', 1)[1])) for a in sys.argv[1:]]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print('CONNECTED', host, port)
    except OSError as exc:
        print('blocked', host, port, type(exc).__name__)
"""


async def test_network_egress_fails(backend, repo, host_server):
    port, accepted = host_server
    targets = [f"{_host_address()}:{port}", f"127.0.0.1:{port}", f"172.17.0.1:{port}", "1.1.1.1:443", "pypi.org:443"]
    # the control: the port really answers from the host
    socket.create_connection((_host_address(), port), timeout=3).close()
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["python", "-c", CONNECT, *targets], timeout=60)
    assert result.exit_code == 0, result.output
    assert "CONNECTED" not in result.output
    assert result.output.count("blocked") == len(targets)
    assert len(accepted) == 1  # only the host's own control connection


async def test_fork_bomb_is_contained_by_the_pids_limit(backend, repo):
    async with open_sandbox(settings_for(backend), repo) as box:
        bomb = await box.run(["sh", "-c", "f() { f | f & }; f; sleep 30"], timeout=5)
        assert bomb.timed_out or bomb.exit_code != 0
        assert "fork" in bomb.output.lower() or "resource temporarily unavailable" in bomb.output.lower()
        alive = await box.run(["echo", "still here"], timeout=30)
    assert alive.ok and "still here" in alive.output


async def test_memory_hog_is_stopped_and_reported_as_out_of_memory(backend, repo):
    hog = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n"
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["python", "-c", hog], timeout=60)
        after = await box.run(["echo", "ok"], timeout=30)
    assert result.oom, result
    assert not result.timed_out and result.exit_code != 0
    assert after.ok


async def test_endless_loop_is_killed_at_the_timeout(backend, repo):
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["python", "-c", "while True: pass"], timeout=2)
        after = await box.run(["echo", "ok"], timeout=30)
    assert result.timed_out and result.exit_code is None
    assert 2 <= result.duration_s < 9
    assert after.ok


async def test_writing_outside_the_workspace_fails(backend, repo):
    script = ("for p in /x /etc/x /usr/x /opt/x /var/x /home/x; do touch $p 2>/dev/null && echo WROTE $p; done;"
              " touch /workspace/ok && echo WORKSPACE-OK; touch /tmp/ok && echo TMP-OK")
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["sh", "-c", script])
    assert "WROTE" not in result.output
    assert "WORKSPACE-OK" in result.output and "TMP-OK" in result.output


async def test_host_environment_is_absent(backend, repo, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_hostsecret1234567890")
    monkeypatch.setenv("AURA_GITHUB_PRIVATE_KEY", "-----BEGIN hostsecret-----")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hostsecret-aws")
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["sh", "-c", "env; cat /proc/1/environ /proc/self/environ 2>/dev/null | tr '\\0' '\\n'"])
    assert result.exit_code == 0
    assert "hostsecret" not in result.output
    assert "GITHUB_TOKEN" not in result.output and "AWS_" not in result.output
    assert "HOME=/tmp" in result.output


async def test_commands_see_a_ci_runners_environment(backend, repo):
    """CI=true, a UTF-8 locale and a writable home, and no terminal settings forced: picocolors and its
    kind turn colours on under CI unless NO_COLOR or TERM=dumb say otherwise."""
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["sh", "-c", 'env; touch "$HOME/.probe" && echo HOME-WRITABLE; '
                                'python -c "import locale; print(locale.getpreferredencoding())"'])
    assert result.exit_code == 0, result.output
    env = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
    assert env["CI"] == "true" and env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert "NO_COLOR" not in env and "TERM" not in env
    assert "HOME-WRITABLE" in result.output and "UTF-8" in result.output


async def test_runs_as_a_non_root_user(backend, repo):
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["id", "-u"])
    assert result.output.strip() != "0"


async def test_host_symlink_is_not_carried_in(backend, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOSTSECRET\n")
    repo = write_tree(tmp_path / "repo", TINY)
    os.symlink(secret, repo / "absolute-link")
    os.symlink("../host-secret.txt", repo / "relative-escape")
    os.symlink("calc.py", repo / "inner-link")
    write_tree(repo / ".git", {"config": "[core]\nsecret = GITSECRET\n"})
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["sh", "-c", "cat absolute-link relative-escape 2>&1; cat inner-link; ls -a"])
    assert "HOSTSECRET" not in result.output
    assert "def add" in result.output  # a link inside the workspace still works
    assert ".git" not in result.output.split()


async def test_only_the_workspace_comes_back_out(backend, repo, tmp_path):
    script = ("echo made > made.txt && mkdir -p sub && echo deep > sub/deep.txt && ln -s /etc/passwd passwd-link"
              " && ln -s ../../etc/hostname escape-link && ln -s made.txt inner-link && mkfifo pipe"
              " && echo outside > /tmp/outside.txt")
    dest = tmp_path / "out"
    async with open_sandbox(settings_for(backend), repo) as box:
        made = await box.run(["sh", "-c", script])
        assert made.ok, made.output
        await box.copy_out(dest)
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*")}
    assert names == {"calc.py", "tests", "tests/test_calc.py", "made.txt", "sub", "sub/deep.txt", "inner-link"}
    assert (dest / "inner-link").is_symlink() and (dest / "inner-link").read_text() == "made\n"


async def test_check_copies_a_fresh_workspace_each_time(backend, repo, tmp_path):
    second = write_tree(tmp_path / "second", {"calc.py": "def add(a, b):\n    return a + b\n"})
    async with open_sandbox(settings_for(backend), repo) as box:
        await box.run(["sh", "-c", "echo junk > junk.txt"])
        report = await box.check(second)
        listing = await box.run(["sh", "-c", "ls -a"])
    assert "junk.txt" not in listing.output and "tests" not in listing.output.split()
    assert report.check("tests").status == CheckStatus.FAILED  # no tests in the second tree
    assert report.pass_rate == 0 and report.pass_rate_reason == "no tests ran"


async def test_output_is_truncated_with_a_marker(backend, repo):
    async with open_sandbox(settings_for(backend, output_limit=2000), repo) as box:
        result = await box.run(["python", "-c", "print('a' * 50000); print('THE END')"])
    assert result.truncated
    assert "bytes cut by aura-sicd" in result.output
    assert len(result.output) < 2200
    assert result.output.startswith("aaa") and "THE END" in result.output


async def test_leaving_the_block_cleans_up_also_when_the_body_raises(backend, repo):
    with pytest.raises(RuntimeError, match="boom"):
        async with open_sandbox(settings_for(backend), repo) as box:
            await box.run(["true"])
            backend_obj = box._backend
            raise RuntimeError("boom")
    if backend == "docker":
        import docker

        from sandbox.docker import LABEL, LABEL_PID

        client = docker.from_env(use_context=False)
        mine = [c for c in client.containers.list(all=True, filters={"label": LABEL}) if c.labels.get(LABEL_PID) == str(os.getpid())]
        client.close()
        assert mine == []
    else:
        assert backend_obj.session_dir is None
        sessions = settings_for(backend).cache_dir / "sessions"
        assert not [p for p in sessions.iterdir() if p.name.startswith(f"{os.getpid()}-")]


async def test_a_missing_command_is_a_failed_command_not_a_crash(backend, repo):
    async with open_sandbox(settings_for(backend), repo) as box:
        result = await box.run(["no-such-tool-aura", "--version"])
    assert result.exit_code not in (0, None) and not result.ok


async def test_the_local_backend_reports_a_missing_command_as_a_shell_would(repo):
    async with open_sandbox(SandboxSettings(_env_file=None, backend="local"), repo) as box:
        result = await box.run(["no-such-tool-aura", "--version"])
    assert result.exit_code == 127 and "no-such-tool-aura: No such file or directory" in result.output
