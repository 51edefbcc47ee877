"""Docker engines for the sandbox: `DOCKER_HOST`, or a pool of engines that share the checks.

- One engine: `DOCKER_HOST` as the Docker CLI reads it (`unix://`, `tcp://` with `DOCKER_TLS_VERIFY` and
  `DOCKER_CERT_PATH`, or `ssh://user@host`, which runs the `ssh` client). The workspace travels as tar
  archives through the API, so the engine may be on another machine.
- A pool: `AURA_SANDBOX_DOCKER_HOSTS=tcp://a:2376,ssh://ci@b` (TLS settings as for one engine). Each job's
  sandbox goes to the engine running the fewest sandbox containers right now (counted on the engines
  themselves, so every bot process on every machine sees the same load), ties broken at random. An
  engine that does not answer, or lacks the check image, is skipped; the job fails only when none is left.
  Build the check image on every engine of the pool (`DOCKER_HOST=… aura-sicd sandbox build`).
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor

from sandbox.config import SandboxSettings
from sandbox.errors import SandboxError

logger = logging.getLogger("sandbox.docker")

SANDBOX_LABEL = "aura-sicd.sandbox"  # sandbox/docker.py's LABEL (imported there from here)
PROBE_TIMEOUT_S = 5


def docker_client(settings: SandboxSettings, host: str | None = None, *, timeout: float | None = None):
    """A client for `host`, else for `DOCKER_HOST`; TLS from `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`."""
    import docker

    timeout = int(timeout or settings.docker_timeout_s)
    target = host or _env_host()
    ssh = bool(target and target.startswith("ssh://"))
    if host is None:
        return docker.from_env(use_context=False, timeout=timeout, use_ssh_client=ssh)
    from docker.utils import kwargs_from_env

    kwargs = kwargs_from_env()
    kwargs["base_url"] = host
    return docker.DockerClient(**kwargs, timeout=timeout, use_ssh_client=ssh)


def _env_host() -> str | None:
    import os

    return os.environ.get("DOCKER_HOST")


def engine_load(settings: SandboxSettings, host: str, image: str | None = None) -> int | str:
    """The number of sandbox containers running on `host`, or why the engine cannot take a sandbox."""
    import docker.errors

    try:
        client = docker_client(settings, host, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 (the SDK raises many kinds for a bad address)
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    try:
        if image:
            client.images.get(image)
        return len(client.containers.list(filters={"label": SANDBOX_LABEL, "status": "running"}))
    except docker.errors.ImageNotFound:
        return f"the check image {image} does not exist there"
    except Exception as exc:  # noqa: BLE001 (refused, TLS, timeout, …)
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        client.close()


def survey(settings: SandboxSettings, image: str | None = None) -> dict[str, int | str]:
    """Every engine of the pool: its load, or why it is left out (probed in parallel)."""
    hosts = settings.docker_hosts
    with ThreadPoolExecutor(max_workers=min(len(hosts), 8) or 1) as pool:
        return dict(zip(hosts, pool.map(lambda h: engine_load(settings, h, image), hosts), strict=True))


def choose_engine(settings: SandboxSettings, image: str | None = None) -> str:
    """The least-loaded engine of the pool that answers and has `image`; `NoEngine` when none does."""
    loads = survey(settings, image)
    usable = {host: load for host, load in loads.items() if isinstance(load, int)}
    for host, reason in loads.items():
        if not isinstance(reason, int):
            logger.warning("Docker engine %s left out of the pool: %s", host, reason)
    if not usable:
        raise NoEngine(unusable_reason(loads))
    least = min(usable.values())
    host = random.choice([h for h, load in usable.items() if load == least])
    logger.info("sandbox on Docker engine %s (%d sandboxes running there)", host, least)
    return host


def pool_unavailable_reason(settings: SandboxSettings, image: str | None = None) -> str | None:
    loads = survey(settings, image)
    return None if any(isinstance(load, int) for load in loads.values()) else unusable_reason(loads)


def unusable_reason(loads: dict[str, int | str]) -> str:
    return "no Docker engine of the pool can take a sandbox (" + "; ".join(f"{h}: {r}" for h, r in loads.items()) + ")"


class NoEngine(SandboxError):
    pass
