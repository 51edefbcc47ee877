"""Containers that a crashed process left behind are removed at the next start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from sandbox.docker import LABEL, LABEL_HOST, LABEL_PID, DockerBackend, reap_stale_containers

pytestmark = pytest.mark.docker


def test_stale_containers_are_reaped(docker_settings):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()  # its pid now belongs to no process: like a crashed bot
    backend = DockerBackend(docker_settings)
    client = backend.client
    labels = {LABEL: "1", LABEL_HOST: socket.gethostname()}
    stale = client.containers.create(docker_settings.image, command=["true"], labels={**labels, LABEL_PID: str(exited.pid)})
    live = client.containers.create(docker_settings.image, command=["true"], labels={**labels, LABEL_PID: str(os.getpid())})
    other_host = client.containers.create(docker_settings.image, command=["true"],
                                          labels={LABEL: "1", LABEL_HOST: "another-machine", LABEL_PID: str(exited.pid)})
    try:
        assert reap_stale_containers(client) >= 1
        remaining = {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}
        assert stale.id not in remaining
        assert live.id in remaining  # this process is alive
        assert other_host.id in remaining  # not ours to judge
    finally:
        for container in (live, other_host):
            container.remove(force=True, v=True)
        client.close()
