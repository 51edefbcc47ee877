"""The admin API under `/admin`: training runs, proposed pull requests, guidance memory.

Every endpoint needs `Authorization: Bearer <AURA_ADMIN_TOKEN>`; without a token configured the API is
off (404 on every route but the schema). Capability flags gate what changes something:

| endpoint | needs |
| --- | --- |
| `POST /admin/training/start` | `ENABLE_TRAINING`; a run that is not a dry run also `SAFE_MODE` off |
| `POST /admin/training/propose-pr` | nothing for a dry run; else `ENABLE_AUTONOMY` and `SAFE_MODE` off |
| `DELETE /admin/memory/{repo}/{id}` | the token only |

Memory is kept per repository: `owner/name` for GitHub, the folder name for local runs (`improve PATH`,
training); `GET /admin/memory` lists every repository with memory, and `{repo}` takes either form.

A refusal is a 403 whose `detail` names the flag. Every decision, allowed or refused, is written to the
audit trail with a risk score (`Policy.evaluate` for proposed changes, `TRAINING_RISK` for runs).
Requests with a wrong token are only logged: anyone can send them, and they must not fill the trail.
The schema is served at `/admin/openapi.json` (webhooks/openapi.py), built from the same pydantic models
that validate (webhooks/admin_models.py). Training runs run in bot/runs/training_runs.py; a proposed pull request is published
by webhooks/proposals.py, the way a job publishes its work.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

from githubkit.exception import GitHubException
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import Settings
from bot.github.mirror import RepoMirror
from bot.learning.memory import SCAN_LIMIT, forget, list_memory
from bot.runs.training_runs import TrainingPlan, TrainingRuns
from bot.cycle.policy import Policy
from bot.records import Episode, PolicyDecision, Proposal
from bot.store import EpisodeSummary, RunInfo, StoreError
from bot.workspace import GitError, WorkspaceError, ensure_repository
from webhooks.admin_models import (
    ACTOR,
    LOCAL_NAME,
    MEMORY_FORGET_RISK,
    REPO_PART,
    TRAINING_RISK,
    AdminRefused,
    EpisodeList,
    Forgotten,
    MemoryList,
    MemoryRepo,
    MemoryRepos,
    ProposalResult,
    ProposePR,
    PullInfo,
    RunStatus,
    TrainingStart,
    TrainingStarted,
)
from webhooks.openapi import Endpoint, Operation, openapi_schema
from webhooks.proposals import ProposalRefused, publish_proposal
from webhooks.runtime import Runtime

log = logging.getLogger(__name__)

def token_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _authorize(request: Request) -> None:
    expected = request.app.state.runtime.settings.admin_token
    if not expected:
        raise AdminRefused(404, "the admin API is off: set AURA_ADMIN_TOKEN to turn it on")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(expected, given.strip()):
        log.warning("admin API: refused a request without the right bearer token from %s", request.client)
        raise AdminRefused(401, "send the admin token: Authorization: Bearer <AURA_ADMIN_TOKEN>")


def _audit(runtime: Runtime, action: str, subject: str, decision: str, risk: float | None, **details: Any) -> None:
    runtime.store.audit(actor=ACTOR, action=action, subject=subject, decision=decision, risk_score=risk,
                        details=details, run_id=details.get("run_id"))


async def _refuse(runtime: Runtime, action: str, subject: str, risk: float | None, reason: str, **details: Any) -> AdminRefused:
    await asyncio.to_thread(_audit, runtime, action, subject, "refused", risk, reason=reason, **details)
    return AdminRefused(403, reason)


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False, include_context=False)]
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
        raise AdminRefused(422, f"invalid request: {detail}", errors=errors) from exc


def admin_endpoint(func: Endpoint) -> Endpoint:
    """Authorize, then run; a refusal becomes a JSON answer with its status code."""

    async def endpoint(request: Request) -> Response:
        try:
            _authorize(request)
            return await func(request)
        except AdminRefused as exc:
            return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code)
        except StoreError as exc:
            return JSONResponse({"detail": f"the store failed: {exc}"}, status_code=503)

    endpoint.__name__ = func.__name__
    endpoint.__doc__ = func.__doc__
    return endpoint


def _json(model: BaseModel | list, status_code: int = 200) -> JSONResponse:
    if isinstance(model, list):
        return JSONResponse([m.model_dump(mode="json") for m in model], status_code=status_code)
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


async def _installation_for(runtime: Runtime, repo: str) -> int:
    if runtime.github is None:
        raise AdminRefused(503, "no GitHub App is configured yet: open / to register one")
    installation = await asyncio.to_thread(runtime.github_store.installation_for_repo, repo)
    if installation is None:
        try:
            installation = await runtime.github.repo_installation_id(repo)
        except GitHubException as exc:
            raise AdminRefused(502, f"GitHub did not answer which installation covers {repo}: {exc!r}") from exc
    if installation is None:
        raise AdminRefused(404, f"aura-sicd is not installed on {repo}")
    return installation


async def start_training(request: Request) -> Response:
    """Start a training run (202); it runs in the background, its status at /runs/{run_id}/summary."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    body: TrainingStart = await _body(request, TrainingStart)
    run_id = body.run_id or f"train-{uuid.uuid4().hex[:12]}"
    risk = TRAINING_RISK["dry_run" if body.dry_run else "commit"]
    subject = f"{run_id} on {body.repo or body.path}"
    details = {"run_id": run_id, "episodes": body.episodes, "dry_run": body.dry_run, "repo": body.repo, "path": body.path}
    if not settings.enable_training:
        raise await _refuse(runtime, "training.start", subject, risk, "training is off: set ENABLE_TRAINING=1", **details)
    if not body.dry_run and settings.safe_mode:
        raise await _refuse(runtime, "training.start", subject, risk,
                            "SAFE_MODE is on: only dry runs may train (set SAFE_MODE=0 to keep commits)", **details)
    if await asyncio.to_thread(runtime.store.get_run, run_id) is not None:
        raise AdminRefused(409, f"run {run_id!r} exists already: pick another run_id or leave it out")

    source: Path | None = None
    installation_id: int | None = None
    if body.path is not None:
        try:
            source = await asyncio.to_thread(ensure_repository, Path(body.path))
        except WorkspaceError as exc:
            raise AdminRefused(422, f"invalid request: path: {exc}") from exc
        repo_name = source.name
    else:
        repo_name = body.repo  # type: ignore[assignment]
        installation_id = await _installation_for(runtime, repo_name)

    training: TrainingRuns = request.app.state.training
    models = list(dict.fromkeys(settings.generator_models)) or [settings.generator_model]

    def record() -> None:
        runtime.store.create_run(run_id, kind="training", repo=repo_name, params={
            "epochs": body.epochs, "tasks": [t.title for t in body.dataset()], "dry_run": body.dry_run,
            "models": models, "episodes": body.episodes, "source": body.repo or str(source), "started_by": ACTOR,
        })
        _audit(runtime, "training.start", subject, "allowed", risk, **details)

    await asyncio.to_thread(record)
    training.start(TrainingPlan(
        run_id=run_id, repo=repo_name, dataset=body.dataset(), epochs=body.epochs, dry_run=body.dry_run,
        max_iterations=body.max_iterations, source=source, installation_id=installation_id,
    ))
    started = TrainingStarted(
        run_id=run_id, repo=repo_name, tasks=len(body.dataset()), epochs=body.epochs, episodes=body.episodes,
        dry_run=body.dry_run, risk_score=risk, summary_url=f"/admin/training/runs/{run_id}/summary",
        episodes_url=f"/admin/training/episodes/{run_id}",
    )
    return _json(started, 202)


# --- proposed pull requests ------------------------------------------------------------------------


def _preview(settings: Settings, proposal: Proposal) -> PolicyDecision:
    """The policy on the request alone, for a dry run and before GitHub is asked anything: paths and sizes,
    every line counted as added. A real proposal is checked again against the checkout of its base."""
    with tempfile.TemporaryDirectory(prefix="aura-policy-") as root:
        return Policy.from_settings(settings).evaluate(proposal, Path(root))


async def _failed(runtime: Runtime, subject: str, decision: PolicyDecision, error: str, details: dict[str, Any]) -> None:
    await asyncio.to_thread(_audit, runtime, "training.propose_pr", subject, "failed", decision.risk_score,
                            error=error, **details)


async def propose_pr(request: Request) -> Response:
    """Open a pull request from whole-file changes; `dry_run` (the default) only renders it."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    body: ProposePR = await _body(request, ProposePR)
    decision = await asyncio.to_thread(_preview, settings, body.as_proposal())
    result = ProposalResult(
        proposal_id=body.proposal_id, branch=body.branch, repo=body.repo, base_branch=body.base_branch,
        title=body.title, body=body.body(), dry_run=body.dry_run, policy=decision, risk_score=decision.risk_score,
    )
    subject = f"{body.repo} {body.branch}"
    details = {"run_id": body.run_id, "proposal_id": body.proposal_id, "files": [c.file_path for c in body.changes],
               "violations": decision.violations}
    if body.dry_run:
        await asyncio.to_thread(_audit, runtime, "training.propose_pr", subject, "dry_run", decision.risk_score, **details)
        return _json(result)
    if not settings.enable_autonomy:
        raise await _refuse(runtime, "training.propose_pr", subject, decision.risk_score,
                            "autonomy is off: set ENABLE_AUTONOMY=1 to open pull requests", **details)
    if settings.safe_mode:
        raise await _refuse(runtime, "training.propose_pr", subject, decision.risk_score,
                            "SAFE_MODE is on: pull requests are only previewed (dry_run); set SAFE_MODE=0", **details)
    if not decision.allowed:
        raise await _refuse(runtime, "training.propose_pr", subject, decision.risk_score,
                            "the policy refuses these changes: " + " ".join(decision.violations), **details)
    installation_id = await _installation_for(runtime, body.repo)
    assert runtime.github is not None  # _installation_for refuses without an App
    try:
        published = await publish_proposal(
            body, result.body, github=runtime.github, installation_id=installation_id,
            mirror=RepoMirror(settings.data_dir), policy=Policy.from_settings(settings), github_store=runtime.github_store,
            clone_url=settings.clone_url(body.repo),  # the configured host, never a URL from an answer
        )
    except ProposalRefused as exc:
        if exc.decision is not None:  # the policy, on the checkout
            details["violations"] = exc.decision.violations
            raise await _refuse(runtime, "training.propose_pr", subject, exc.decision.risk_score, exc.detail, **details) from exc
        if exc.status_code != 422:  # an invalid request is answered, not audited
            await _failed(runtime, subject, decision, exc.detail, details)
        raise AdminRefused(exc.status_code, exc.detail) from exc
    except GitHubException as exc:
        await _failed(runtime, subject, decision, repr(exc), details)
        raise AdminRefused(502, f"GitHub refused a request: {exc!r}") from exc
    except (GitError, WorkspaceError) as exc:
        await _failed(runtime, subject, decision, str(exc), details)
        raise AdminRefused(502, f"git failed: {exc}") from exc
    checked = published.policy
    result = result.model_copy(update={
        "commit": published.commit, "base_branch": published.base, "policy": checked, "risk_score": checked.risk_score,
        "pull_request": PullInfo(number=published.pull.number, html_url=published.pull.html_url),
    })
    details["violations"] = checked.violations
    await asyncio.to_thread(_audit, runtime, "training.propose_pr", subject, "opened", checked.risk_score,
                            pull_request=published.pull.html_url, commit=published.commit, **details)
    return _json(result, 201)


# --- reading runs and episodes ---------------------------------------------------------------------


async def _run_or_404(runtime: Runtime, run_id: str) -> RunInfo:
    run = await asyncio.to_thread(runtime.store.get_run, run_id)
    if run is None:
        raise AdminRefused(404, f"unknown run {run_id!r}")
    return run


async def run_summary(request: Request) -> Response:
    """Episode counts by state, tokens, changes proposed and actions of a run, and its status."""
    runtime: Runtime = request.app.state.runtime
    run = await _run_or_404(runtime, request.path_params["run_id"])
    summary = await asyncio.to_thread(runtime.store.run_summary, run.run_id)
    return _json(RunStatus(**summary.model_dump(), status=run.status, kind=run.kind, repo=run.repo))


async def list_runs(request: Request) -> Response:
    """The newest runs (`?kind=training`, `?repo=owner/name`, `?limit=`)."""
    runtime: Runtime = request.app.state.runtime
    limit = _int_param(request, "limit", 50, 1, 500)
    runs = await asyncio.to_thread(runtime.store.list_runs, repo=request.query_params.get("repo"), limit=limit)
    kind = request.query_params.get("kind")
    return _json([r for r in runs if kind is None or r.kind == kind])


async def list_run_episodes(request: Request) -> Response:
    """A run's episodes with their iterations (`?summary=1`: one line each)."""
    runtime: Runtime = request.app.state.runtime
    run = await _run_or_404(runtime, request.path_params["run_id"])
    if request.query_params.get("summary") in ("1", "true"):
        rows: list[BaseModel] = await asyncio.to_thread(runtime.store.list_episode_summaries, run.run_id)
    else:
        rows = await asyncio.to_thread(runtime.store.list_episodes, run.run_id)
    return _json(EpisodeList(run_id=run.run_id, episodes=[r.model_dump(mode="json") for r in rows]))


async def get_episode(request: Request) -> Response:
    """One episode with its iterations."""
    runtime: Runtime = request.app.state.runtime
    run = await _run_or_404(runtime, request.path_params["run_id"])
    episode = await asyncio.to_thread(runtime.store.get_episode, run.run_id, request.path_params["episode_id"])
    if episode is None:
        raise AdminRefused(404, f"run {run.run_id!r} has no episode {request.path_params['episode_id']!r}")
    return _json(episode)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise AdminRefused(422, f"invalid request: {name} must be a whole number from {low} to {high}")
    return int(raw)


# --- guidance memory -------------------------------------------------------------------------------


def _repo_param(request: Request) -> str:
    repo = request.path_params["repo"]
    parts = repo.split("/")
    if {".", ".."} & set(parts):
        raise AdminRefused(422, "invalid request: `.` and `..` are not repository names")
    if len(parts) == 2 and all(re.fullmatch(REPO_PART, p) for p in parts):
        return repo
    if len(parts) == 1 and re.fullmatch(LOCAL_NAME, repo):
        return repo
    raise AdminRefused(422, "invalid request: the repository must be owner/name (GitHub) or a local folder name")


async def _known(runtime: Runtime, repo: str) -> None:
    if repo not in await asyncio.to_thread(runtime.store.guidance_repos):
        raise AdminRefused(404, f"no memory for {repo}: GET /admin/memory lists the repositories that have some")


async def memory_repos(request: Request) -> Response:
    """Every repository the bot has memory for (GitHub owner/name or a local folder name)."""
    runtime: Runtime = request.app.state.runtime

    def collect() -> list[MemoryRepo]:
        return [MemoryRepo(repo=r, entries=len(list_memory(runtime.store, r, limit=SCAN_LIMIT)))
                for r in runtime.store.guidance_repos()]

    return _json(MemoryRepos(repositories=await asyncio.to_thread(collect)))


async def memory_list(request: Request) -> Response:
    """What guidance memory may hand to the generator on a repository, newest first, with ids."""
    runtime: Runtime = request.app.state.runtime
    repo = _repo_param(request)
    limit = _int_param(request, "limit", 50, 1, 1000)
    await _known(runtime, repo)
    entries = await asyncio.to_thread(list_memory, runtime.store, repo, limit=limit)
    return _json(MemoryList(repo=repo, entries=entries))


async def memory_forget(request: Request) -> Response:
    """Forget one memory entry of the repository (audited); 404 when it has none with that id."""
    runtime: Runtime = request.app.state.runtime
    repo = _repo_param(request)
    raw = request.path_params["guidance_id"]
    if not raw.isdigit():
        raise AdminRefused(422, f"invalid request: the entry id must be a number, got {raw!r}")
    deleted = await asyncio.to_thread(forget, runtime.store, repo, int(raw), actor=ACTOR, risk_score=MEMORY_FORGET_RISK)
    if not deleted:
        raise AdminRefused(404, f"{repo} has no memory entry {raw}")
    return _json(Forgotten(repo=repo, id=int(raw), deleted=True))


# --- routes and schema -----------------------------------------------------------------------------


OPERATIONS = [
    Operation("POST", "/admin/training/start", start_training, TrainingStarted, 202, body=TrainingStart),
    Operation("POST", "/admin/training/propose-pr", propose_pr, ProposalResult, 200, body=ProposePR,
              other_statuses={201: "opened"}),
    Operation("GET", "/admin/training/runs", list_runs, RunInfo, many=True),
    Operation("GET", "/admin/training/runs/{run_id}/summary", run_summary, RunStatus),
    Operation("GET", "/admin/training/episodes/{run_id}", list_run_episodes, EpisodeList),
    Operation("GET", "/admin/training/episodes/{run_id}/{episode_id}", get_episode, Episode),
    Operation("GET", "/admin/memory", memory_repos, MemoryRepos),
    Operation("GET", "/admin/memory/{repo:path}", memory_list, MemoryList),
    Operation("DELETE", "/admin/memory/{repo:path}/{guidance_id}", memory_forget, Forgotten),
]


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_schema(OPERATIONS, title="aura-sicd admin API", extra_models=[Episode, EpisodeSummary]))


def routes() -> list[Route]:
    return [Route("/admin/openapi.json", openapi, methods=["GET"])] + [
        Route(op.path, admin_endpoint(op.endpoint), methods=[op.method]) for op in OPERATIONS
    ]
