"""The ASGI app: `create_app(settings)` builds it; its lifespan opens the store and the queue.

    uvicorn --factory webhooks.app:create_app      (or `aura-sicd serve`)

Routes: POST /webhooks/github, GET /healthz, GET /readyz, GET / (first-run setup, then the dashboard),
POST /setup, GET /setup/callback, GET /metrics, /dashboard/... (webhooks/dashboard.py), /admin/... (webhooks/admin.py). Everything the routes share is the `Runtime` in `app.state.runtime`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.routing import Route

from bot.config import Settings
from bot.github.client import AppCredentials, GitHubApp, load_credentials
from bot.jobs.memory_queue import InMemoryJobQueue
from bot.jobs.queue import JobQueue
from bot.runs.training_runs import TrainingRuns
from bot.store import Store
from bot.store.github import GitHubStore
from webhooks import admin, dashboard, health, setup
from webhooks.handlers import router as default_router
from webhooks.metrics import Metrics, count_deliveries, job_counts_of, metrics_endpoint
from webhooks.receiver import receive_github
from webhooks.routing import Router
from webhooks.runtime import ReadinessCheck, Runtime

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    queue: JobQueue | None = None,
    store: Store | None = None,
    router: Router | None = None,
    github_factory: Callable[[AppCredentials], GitHubApp] | None = None,
    readiness: dict[str, ReadinessCheck] | None = None,
    max_body_bytes: int = 25 * 1024 * 1024,
) -> Starlette:
    """Build the app. `serve` passes the durable queue; tests pass their own queue, store or GitHub client factory."""
    settings = settings or Settings()
    credentials = load_credentials(settings)  # a broken configuration fails here, before serving

    def make_github(creds: AppCredentials) -> GitHubApp:
        return GitHubApp(creds, api_url=settings.github_api_url, retry_budget_s=settings.github_retry_budget_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_store = store is None
        opened = Store.open(settings.database_url) if own_store else store
        github_store = GitHubStore(opened)
        job_queue = queue or InMemoryJobQueue(concurrency=settings.queue_concurrency)
        if queue is None:
            log.warning("no durable job queue given: jobs are kept in memory and nothing runs them")
        runtime = Runtime(
            settings=settings,
            store=opened,
            github_store=github_store,
            queue=job_queue,
            router=router or default_router,
            github_factory=github_factory or make_github,
            readiness=readiness if readiness is not None else health.default_checks(settings, github_store, job_queue),
            max_body_bytes=max_body_bytes,
        )
        if credentials is not None:
            runtime.configure(credentials)
        # A queue with a lifecycle (the durable one) starts here, before pending admissions enqueue.
        if (start_queue := getattr(job_queue, "start", None)) is not None:
            await start_queue(store=opened, github=lambda: runtime.github, remember_label=runtime.remember_label)
        await runtime.start_admitting()  # AURA_SERVE_ADMITS: deliveries left from the last run first
        app.state.setup_code = None if credentials is not None else setup.announce_setup_code(settings.public_url, settings.data_dir)
        app.state.runtime = runtime
        app.state.setup_states = set()
        app.state.metrics = Metrics(opened, job_counts=job_counts_of(job_queue), events=runtime.router.events)
        app.state.training = TrainingRuns(settings, opened, lambda: runtime.github, actor=admin.ACTOR,
                                          observe=app.state.metrics.observe)
        try:
            yield
        finally:
            await app.state.training.aclose()
            await runtime.stop_admitting()
            if (stop_queue := getattr(job_queue, "stop", None)) is not None:
                await stop_queue()
            await runtime.aclose()
            if own_store:
                opened.close()

    return Starlette(
        routes=[
            Route("/webhooks/github", count_deliveries(receive_github), methods=["POST"]),
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            Route("/", dashboard.home, methods=["GET"]),
            Route("/setup", setup.unlock, methods=["POST"]),
            Route("/setup/callback", setup.callback, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *dashboard.routes(),
            *admin.routes(),
        ],
        lifespan=lifespan,
    )
