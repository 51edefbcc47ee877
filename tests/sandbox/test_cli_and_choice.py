"""`aura-sicd sandbox ...` and how a backend is chosen."""

from __future__ import annotations

import json
import logging

import pytest

from bot.cli import main
from sandbox import SandboxSettings, SandboxUnavailable, open_sandbox
from sandbox.box import choose_backend

from .conftest import write_tree

TINY = {"calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"}


@pytest.fixture
def cli_env(monkeypatch, backend):
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", backend)
    monkeypatch.setenv("AURA_SANDBOX_MEMORY_MB", "512")
    return backend


def test_check_json(cli_env, tmp_path, capsys):
    repo = write_tree(tmp_path / "repo", TINY)
    assert main(["sandbox", "check", str(repo), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == cli_env and report["pass_rate"] == 1.0


def test_check_table_and_failing_exit_code(cli_env, tmp_path, capsys):
    repo = write_tree(tmp_path / "repo", {**TINY, "calc.py": "def add(a, b):\n    return a - b\n"})
    assert main(["sandbox", "check", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "tests" in out and "failed" in out and "pass rate 0.00: 0 of 1 tests passed" in out
    assert "FAILED tests/test_calc.py::test_add" in out


def test_run_exits_with_the_commands_code(cli_env, tmp_path, capsys):
    repo = write_tree(tmp_path / "repo", TINY)
    assert main(["sandbox", "run", str(repo), "--", "sh", "-c", "cat calc.py; exit 3"]) == 3
    assert "def add" in capsys.readouterr().out
    assert main(["sandbox", "run", str(repo), "--timeout", "1", "--", "sleep", "30"]) == 124
    assert "killed after the timeout of 1 s" in capsys.readouterr().err


def test_cli_configuration_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "local")
    assert main(["sandbox", "check", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    repo = write_tree(tmp_path / "repo", {**TINY, ".github/aura-sicd.yml": "checks: 3\n"})
    assert main(["sandbox", "check", str(repo)]) == 2
    assert ".github/aura-sicd.yml is invalid: checks" in capsys.readouterr().err
    assert main(["sandbox", "run", str(repo)]) == 2
    assert "no command given" in capsys.readouterr().err


def test_build_without_an_engine_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["sandbox", "build"]) == 2
    assert "cannot build the check image: the Docker engine is not reachable" in capsys.readouterr().err


def test_auto_without_any_backend_names_both_fixes(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    settings = SandboxSettings(backend="auto", bwrap_path="no-such-bwrap")
    with pytest.raises(SandboxUnavailable) as info:
        choose_backend(settings)
    message = str(info.value)
    assert "docker: the Docker engine is not reachable" in message
    assert "bwrap: bubblewrap is not installed" in message
    assert "aura-sicd sandbox build" in message and "apt-get install bubblewrap" in message


def test_auto_falls_back_to_bubblewrap_never_to_local(monkeypatch, bwrap_settings):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert choose_backend(SandboxSettings(backend="auto")).name == "bwrap"


def test_auto_prefers_docker(docker_settings):
    assert choose_backend(SandboxSettings(backend="auto")).name == "docker"


def test_explicit_backend_that_is_missing(monkeypatch):
    with pytest.raises(SandboxUnavailable, match="the bwrap sandbox backend is not available: bubblewrap is not installed"):
        choose_backend(SandboxSettings(backend="bwrap", bwrap_path="no-such-bwrap"))
    with pytest.raises(SandboxUnavailable, match="the check image no-such/image:1 does not exist"):
        if choose_backend(SandboxSettings(backend="docker", image="no-such/image:1")):
            pass


async def test_local_backend_warns_on_every_use(tmp_path, caplog):
    repo = write_tree(tmp_path / "repo", TINY)
    caplog.set_level(logging.WARNING, logger="sandbox")
    async with open_sandbox(SandboxSettings(backend="local"), repo) as box:
        assert box.backend_name == "local"
        caplog.clear()
        first = await box.run(["python", "-c", "print('hi')"])
        second = await box.run(["true"])
    assert first.ok and second.ok and "hi" in first.output
    assert sum("WITHOUT isolation" in r.getMessage() for r in caplog.records) == 2
