"""`POST /webhooks/github`: verify, parse, route, record, acknowledge. Nothing more.

Order matters: the signature is checked on the raw bytes before anything is parsed; a body over the
size limit is refused while it is being read; the delivery id makes recording (and so enqueueing)
idempotent. Whatever a signed body holds, the answer is a 4xx and one log line, never a 5xx: 503 only
when the store is really unavailable (GitHub redelivers), 500 only for a bug of ours. The receiver's work ends once the delivery row (holding its `JobRequest`) is committed and
the answer sent; an admitter (bot/jobs/admission.py), in this process or a worker, makes the GitHub
calls and enqueues.
"""

from __future__ import annotations

import json
import logging
import re

from githubkit.webhooks import verify
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.github.job_request import JobRequest
from bot.github.payloads import Event, check_strings
from bot.store.github import DeliveryRecord, DeliveryStatus
from webhooks.routing import HandlerContext, Ignored, Recorded
from webhooks.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
_HEADER_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")  # event names and delivery ids (GitHub sends UUIDs)


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


def _refuse(delivery_id: str | None, status_code: int, detail: str) -> JSONResponse:
    """A hostile or broken body: one log line (no stack trace), a 4xx."""
    log.warning("delivery %.100r refused (%d): %s", delivery_id, status_code, detail)
    return _answer(status_code, "bad_request", detail=detail)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def store_unavailable(exc: BaseException) -> bool:
    """Could retrying later help? A lost connection, a locked or full database, a pool timeout: yes.
    A value the database refuses (overflow, bad encoding, constraint): no."""
    if isinstance(exc, (OperationalError, PoolTimeout, ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


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
    if not _HEADER_TOKEN.match(event_name) or not _HEADER_TOKEN.match(delivery_id):
        return _refuse(delivery_id, 400, "X-GitHub-Event and X-GitHub-Delivery must be short plain tokens")
    try:
        payload = json.loads(body)
    except RecursionError:
        return _refuse(delivery_id, 400, "the body is not JSON we accept: nested too deeply")
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer beyond Python's digit limit
        return _refuse(delivery_id, 400, f"the body is not JSON: {str(exc)[:200]}")
    if not isinstance(payload, dict):
        return _refuse(delivery_id, 400, "the body must be a JSON object")
    try:
        check_strings(payload)  # before anything is echoed, logged or stored
    except ValueError as exc:
        return _refuse(delivery_id, 400, f"the body holds a string that {exc}")

    if event_name == "ping":
        return _answer(200, "pong", zen=payload.get("zen"))
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    route = runtime.router.lookup(event_name, action)
    if route is None:
        return _answer(200, "ignored", reason=f"{event_name}.{(action or '-')[:100]} is not handled")

    try:
        event = route.model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()[:5])
        return _refuse(delivery_id, 400, f"{event_name}.{action}: missing or malformed fields: {fields}")
    except RecursionError:
        return _refuse(delivery_id, 400, f"{event_name}.{action}: nested too deeply")
    if event.sender is not None and event.sender.is_bot:
        return _answer(200, "ignored", reason=f"sent by the bot account {event.sender.login}")

    ctx = HandlerContext(
        delivery_id=delivery_id, event=f"{event_name}.{action}" if action else event_name,
        settings=runtime.settings, store=runtime.github_store, repo_labels=runtime.repo_labels,
    )
    try:
        outcome = await route.handler(event, ctx)
    except Exception as exc:
        if store_unavailable(exc):
            log.warning("delivery %s (%s): the store is unavailable: %r", delivery_id, ctx.event, exc)
            return _answer(503, "unavailable", detail="the store is unavailable now; GitHub may redeliver")
        log.exception("delivery %s (%s): handler failed", delivery_id, ctx.event)
        return _answer(500, "error", detail="the handler failed; see the server log")

    job = outcome if isinstance(outcome, JobRequest) else None
    status = "received" if job else ("ignored" if isinstance(outcome, Ignored) else "recorded")
    detail = outcome.reason if isinstance(outcome, Ignored) else outcome.summary if isinstance(outcome, Recorded) else None
    try:
        first_time = await _record(runtime, delivery_id, event_name, event, status, detail, job)
    except Exception as exc:  # noqa: BLE001  (sorted below: unavailable store or unstorable row)
        if store_unavailable(exc):
            log.warning("delivery %s (%s): cannot record it, the store is unavailable: %r", delivery_id, ctx.event, exc)
            return _answer(503, "unavailable", detail="the store cannot record deliveries now; GitHub may redeliver")
        # the row itself cannot be stored: sending it again can never succeed
        log.warning("delivery %s (%s): refused, the store cannot hold it: %s", delivery_id, ctx.event, _short(exc))
        return _answer(422, "unprocessable", detail="the delivery holds values that cannot be stored")
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
