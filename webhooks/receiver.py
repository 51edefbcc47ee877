"""`POST /webhooks/github`: verify, parse, route, record, acknowledge. Nothing more.

Order matters: the signature is checked on the raw bytes before anything is parsed; a body over the
size limit is refused while it is being read; the delivery id makes recording (and so enqueueing)
idempotent. The receiver's work ends once the delivery row (holding its `JobRequest`) is committed and
the answer sent; an admitter (bot/jobs/admission.py), in this process or a worker, makes the GitHub
calls and enqueues.
"""

from __future__ import annotations

import json
import logging

from githubkit.webhooks import verify
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.github.job_request import JobRequest
from bot.github.payloads import Event
from bot.store.github import DeliveryRecord, DeliveryStatus
from webhooks.routing import HandlerContext, Ignored, Recorded
from webhooks.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status_code: int, status: str, **fields: object) -> JSONResponse:
    return JSONResponse({"status": status, **fields}, status_code=status_code)


async def receive_github(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    if runtime.credentials is None:
        return _answer(503, "not_configured", detail="no GitHub App is configured yet: open / to register one")
    try:
        body = await _read_body(request, runtime.max_body_bytes)
    except _TooLarge:
        return _answer(413, "too_large", detail=f"payloads over {runtime.max_body_bytes} bytes are refused")

    signature = request.headers.get("x-hub-signature-256")
    if not signature or not signature.startswith("sha256=") or not verify(runtime.credentials.webhook_secret.get_secret_value(), body, signature):
        return _answer(401, "unauthorized", detail="missing or invalid X-Hub-Signature-256")

    runtime.delivery_received()
    event_name = request.headers.get("x-github-event")
    delivery_id = request.headers.get("x-github-delivery")
    if not event_name or not delivery_id:
        return _answer(400, "bad_request", detail="X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _answer(400, "bad_request", detail=f"the body is not JSON: {exc}")
    if not isinstance(payload, dict):
        return _answer(400, "bad_request", detail="the body must be a JSON object")

    if event_name == "ping":
        return _answer(200, "pong", zen=payload.get("zen"))
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    route = runtime.router.lookup(event_name, action)
    if route is None:
        return _answer(200, "ignored", reason=f"{event_name}.{action or '-'} is not handled")

    try:
        event = route.model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        return _answer(400, "bad_request", detail=f"{event_name}.{action}: missing or malformed fields: {fields}")
    if event.sender is not None and event.sender.is_bot:
        return _answer(200, "ignored", reason=f"sent by the bot account {event.sender.login}")

    ctx = HandlerContext(
        delivery_id=delivery_id, event=f"{event_name}.{action}" if action else event_name,
        settings=runtime.settings, store=runtime.github_store, repo_labels=runtime.repo_labels,
    )
    try:
        outcome = await route.handler(event, ctx)
    except Exception:
        log.exception("delivery %s (%s): handler failed", delivery_id, ctx.event)
        return _answer(500, "error", detail="the handler failed; see the server log")

    job = outcome if isinstance(outcome, JobRequest) else None
    status = "received" if job else ("ignored" if isinstance(outcome, Ignored) else "recorded")
    detail = outcome.reason if isinstance(outcome, Ignored) else outcome.summary if isinstance(outcome, Recorded) else None
    try:
        first_time = await _record(runtime, delivery_id, event_name, event, status, detail, job)
    except Exception:
        log.exception("delivery %s (%s): cannot record it", delivery_id, ctx.event)
        return _answer(503, "unavailable", detail="the store cannot record deliveries now; GitHub may redeliver")
    if not first_time:
        return _answer(200, "duplicate", delivery=delivery_id)
    if job is None:
        return _answer(200, status, reason=detail)
    runtime.admission_due()  # the row is committed: an admitter takes it from there
    return _answer(202, "accepted", delivery=delivery_id, kind=job.kind.value)


async def _record(
    runtime: Runtime, delivery_id: str, event_name: str, event: Event, status: DeliveryStatus,
    detail: str | None, job: JobRequest | None,
) -> bool:
    """Write the delivery row (group-committed); False when the delivery id was seen before."""
    return await runtime.deliveries.record(
        DeliveryRecord(
            delivery_id=delivery_id,
            event=event_name,
            action=event.action,
            repo=_repo(event),
            installation_id=event.installation_id,
            sender=event.sender.login if event.sender else None,
            status=status,
            detail=detail,
            job=job.model_dump(mode="json") if job else None,
        )
    )


def _repo(event: Event) -> str | None:
    return event.repository.full_name if event.repository else None
