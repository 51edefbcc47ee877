"""`/healthz`: the process answers. `/readyz`: the store, queue, Ollama and Docker answer, and which not."""

from __future__ import annotations

import asyncio

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.config import Settings
from bot.store.github import GitHubStore
from bot.jobs.queue import JobQueue
from webhooks.runtime import ReadinessCheck, Runtime

CHECK_TIMEOUT_S = 3.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    names = list(runtime.readiness)
    results = await asyncio.gather(*(_run(runtime.readiness[name]) for name in names))
    checks = {name: (problem or "ok") for name, problem in zip(names, results, strict=True)}
    ready = all(problem is None for problem in results)
    body = {"status": "ready" if ready else "not_ready", "checks": checks,
            "github_app": "configured" if runtime.credentials else "not configured"}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _run(check: ReadinessCheck) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:.0f}s"
    except Exception as exc:  # a readiness probe reports; it never raises
        return f"{type(exc).__name__}: {exc}"


def default_checks(settings: Settings, store: GitHubStore, queue: JobQueue) -> dict[str, ReadinessCheck]:
    async def store_check() -> str | None:
        await asyncio.to_thread(store.ping)
        return None

    async def ollama_check() -> str | None:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            response = await client.get(f"{settings.ollama_host}/api/version")
        return None if response.status_code == 200 else f"{settings.ollama_host} answered {response.status_code}"

    async def docker_check() -> str | None:
        if settings.sandbox.backend in ("bwrap", "local"):
            return None  # the sandbox does not use Docker

        def ping() -> None:
            import docker

            client = docker.from_env(use_context=False, timeout=CHECK_TIMEOUT_S)
            try:
                client.ping()
            finally:
                client.close()

        await asyncio.to_thread(ping)
        return None

    return {"store": store_check, "queue": queue.ready, "ollama": ollama_check, "docker": docker_check}
