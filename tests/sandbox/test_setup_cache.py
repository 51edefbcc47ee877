"""The setup phase: an editable install with test extras, with network, cached by dependency hash."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import pytest

from sandbox import open_sandbox
from sandbox.python_env import PIP_INSTALL

from .conftest import settings_for, write_tree


def _package(tmp_path: Path, marker: str) -> Path:
    # a unique dependency hash per test run, so the first setup really runs
    return write_tree(tmp_path / "pkg", {
        "pyproject.toml": (
            "[build-system]\nrequires = ['setuptools>=61']\nbuild-backend = 'setuptools.build_meta'\n\n"
            f"[project]\nname = 'tinypkg'\nversion = '0.1.0'\ndescription = '{marker}'\n"
            "[project.optional-dependencies]\ntest = ['iniconfig']\n"
        ),
        "src/tinypkg/__init__.py": "def double(x):\n    return 2 * x\n",
        "tests/test_double.py": (
            "import iniconfig\nfrom tinypkg import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
        ),
    })


async def test_setup_installs_the_package_and_is_cached(backend, tmp_path, caplog):
    repo = _package(tmp_path, uuid.uuid4().hex)
    settings = settings_for(backend, memory_mb=1024, pids=256)
    caplog.set_level(logging.INFO, logger="sandbox")
    async with open_sandbox(settings, repo) as box:
        assert box.plan.setup == [[*PIP_INSTALL, "-e", ".[test]"]]
        report = await box.check(repo)
        network = await box.run(["python", "-c", "import socket; socket.create_connection(('pypi.org', 443), timeout=3)"])
    assert report.all_green, report.summary()
    assert report.pass_rate == 1.0
    assert not network.ok  # the checks run without network even though the setup had it
    assert sum("setting up" in r.getMessage() for r in caplog.records) == 1

    caplog.clear()
    environment = None
    try:
        async with open_sandbox(settings, repo) as box:
            again = await box.check(repo)
            environment = box._backend.image if backend == "docker" else box._backend.env_dir
        assert again.pass_rate == 1.0
        assert not any("setting up" in r.getMessage() for r in caplog.records)  # the cached environment
    finally:
        if environment is not None:
            _remove_environment(backend, environment)


def _remove_environment(backend: str, environment) -> None:
    """Each run makes a fresh environment (its own dependency hash): don't let them pile up."""
    if backend == "docker":
        import docker

        client = docker.from_env(use_context=False)
        client.images.remove(environment, force=True)
        client.close()
    else:
        shutil.rmtree(environment)
        environment.with_name(environment.name + ".ready").unlink()
        environment.with_name(environment.name + ".lock").unlink(missing_ok=True)


async def test_a_repository_without_dependency_files_needs_no_setup(backend, tmp_path, caplog):
    repo = write_tree(tmp_path / "plain", {"tests/test_x.py": "def test_x():\n    assert True\n"})
    caplog.set_level(logging.INFO, logger="sandbox")
    async with open_sandbox(settings_for(backend), repo) as box:
        assert box.plan.setup == []
        report = await box.check(repo)
    assert report.pass_rate == 1.0
    assert not any("setting up" in r.getMessage() for r in caplog.records)


@pytest.mark.bwrap
async def test_uv_installs_when_the_sandbox_has_it(bwrap_settings, tmp_path):
    repo = _package(tmp_path, uuid.uuid4().hex)
    settings = settings_for("bwrap", memory_mb=1024, pids=256,
                            tools=[*settings_for("bwrap").tools, "uv"])  # uv on the tools' PATH
    environment = None
    try:
        async with open_sandbox(settings, repo) as box:
            environment = box._backend.env_dir
            report = await box.check(repo)
            installer = await box.run(["python", "-c", "import importlib.metadata as m; "
                                       "print(m.distribution('tinypkg').read_text('INSTALLER'))"])
        assert report.pass_rate == 1.0, report.summary()
        assert installer.output.strip() == "uv"
    finally:
        if environment is not None:
            _remove_environment("bwrap", environment)
