"""The dashboard: server-rendered HTML of what the bot did and how it is getting on. No JavaScript.

GET /                                        the dashboard once a GitHub App is configured (before: setup)
GET /dashboard                               runs, reward curves per repository, top issues, model leaderboard
GET /dashboard/runs/{run_id}                 a run's episodes
GET /dashboard/runs/{run_id}/{episode_id}    an episode's iteration timeline
GET|POST /dashboard/login                    the token form (only when AURA_ADMIN_TOKEN is set)

Access: the pages show repository code, issues and model output. With `AURA_ADMIN_TOKEN` set they need
it once — through the login form or `?token=` in a link — after which a cookie holding an HMAC of the
token (never the token itself; HttpOnly, SameSite=Lax, Secure on https) lets the browser in. Without a
token (a local install on a trusted machine) they are open, like the rest of that install.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import statistics
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from markupsafe import Markup, escape
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from bot.learning.bandit import ModelBandit
from bot.learning.bench import bench_report
from bot.store import EpisodeSummary, RunInfo, RunSummary, Store
from sandbox.reports import CheckStatus
from webhooks import setup
from webhooks.runtime import Runtime

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

COOKIE = "aura_dashboard"
COOKIE_MAX_AGE_S = 14 * 24 * 3600
RUNS_SHOWN = 30
ITERATIONS_READ = 2000  # newest iterations behind the curves and the leaderboard
CURVE_WINDOW = 5  # rolling mean of the reward curve


# --- access ----------------------------------------------------------------------------------------


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"aura-sicd dashboard session", hashlib.sha256).hexdigest()


def _token(request: Request) -> str | None:
    return request.app.state.runtime.settings.admin_token or None


def _signed_in(request: Request) -> bool:
    token = _token(request)
    if token is None:
        return True
    cookie = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def _safe_next(target: str | None) -> str:
    """Only paths of this site (no `//host` or scheme), so the login cannot redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    return target


def _with_session(request: Request, response: Response) -> Response:
    token = _token(request)
    assert token is not None
    secure = request.app.state.runtime.settings.public_url.startswith("https://")
    response.set_cookie(COOKIE, session_value(token), max_age=COOKIE_MAX_AGE_S, httponly=True,
                        samesite="lax", secure=secure, path="/")
    return response


def _guard(request: Request) -> Response | None:
    """None when the visitor may see the page; else the login page (or a redirect that signs in)."""
    token = _token(request)
    if token is None or _signed_in(request):
        return None
    given = request.query_params.get("token")
    if given is not None:
        if hmac.compare_digest(given.encode(), token.encode()):
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            return _with_session(request, RedirectResponse(target, status_code=303))
        return _login_page(request, "That token is not right.", request.url.path)
    return _login_page(request, None, request.url.path)


def _login_page(request: Request, error: str | None, next_path: str) -> Response:
    return templates.TemplateResponse(request, "dashboard_login.html", {"error": error, "next": _safe_next(next_path)},
                                      status_code=401)


async def login(request: Request) -> Response:
    if _token(request) is None:
        return RedirectResponse("/dashboard", status_code=303)
    if request.method == "GET":
        return _login_page(request, None, request.query_params.get("next", "/dashboard"))
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0]
    target = _safe_next((form.get("next") or ["/dashboard"])[0])
    if not hmac.compare_digest(given.encode(), (_token(request) or "").encode()):
        return _login_page(request, "That token is not right.", target)
    return _with_session(request, RedirectResponse(target, status_code=303))


# --- reward curves as SVG --------------------------------------------------------------------------


def reward_curve_svg(points: list[tuple[datetime, float, bool]], *, width: int = 520, height: int = 150, title: str = "") -> Markup:
    """Rewards over time: one dot per scored attempt (filled when approved) and their rolling mean."""
    left, right, top, bottom = 34, 10, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for value in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:.1f}</text>')
    if not points:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" class="axis" text-anchor="middle">no scored attempts yet</text></svg>')
        return Markup("".join(parts))
    points = sorted(points, key=lambda p: p[0])
    start, end = points[0][0].timestamp(), points[-1][0].timestamp()
    span = end - start

    def x_of(i: int, when: datetime) -> float:
        # time on the axis; when every point shares one moment, spread them by order
        fraction = (when.timestamp() - start) / span if span > 0 else (i / (len(points) - 1) if len(points) > 1 else 0.5)
        return left + plot_w * fraction

    def y_of(value: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, value)))

    xs = [x_of(i, p[0]) for i, p in enumerate(points)]
    rolling = [statistics.fmean(p[1] for p in points[max(0, i - CURVE_WINDOW + 1): i + 1]) for i in range(len(points))]
    if len(points) > 1:
        line = " ".join(f"{x:.1f},{y_of(v):.1f}" for x, v in zip(xs, rolling, strict=True))
        parts.append(f'<polyline points="{line}" class="mean"/>')
    for x, (when, value, approved) in zip(xs, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="3.5" class="{"approved" if approved else "attempt"}">'
                     f'<title>{when:%Y-%m-%d %H:%M} reward {value:.3f}{" (approved)" if approved else ""}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 6}" class="axis">{points[0][0]:%Y-%m-%d}</text>'
                 f'<text x="{width - right}" y="{height - 6}" class="axis" text-anchor="end">{points[-1][0]:%Y-%m-%d}</text></svg>')
    return Markup("".join(parts))


# --- what the pages show ---------------------------------------------------------------------------


class RunRow(BaseModel):
    run: RunInfo
    summary: RunSummary


class RepoCurve(BaseModel):
    repo: str
    attempts: int
    approved: int
    mean_reward: float | None
    last_reward: float | None
    svg: str


class LeaderRow(BaseModel):
    repo: str
    model: str
    attempts: int
    approved: int
    mean_reward: float | None
    posterior_mean: float  # the bandit's Beta posterior mean for the generator role
    observations: float


class Overview(BaseModel):
    runs: list[RunRow] = Field(default_factory=list)
    curves: list[RepoCurve] = Field(default_factory=list)
    top_issues: list[tuple[str, int]] = Field(default_factory=list)
    leaderboard: list[LeaderRow] = Field(default_factory=list)
    iterations: int = 0


def overview(store: Store, *, human_feedback_weight: float = 3.0) -> Overview:
    runs = [RunRow(run=r, summary=store.run_summary(r.run_id)) for r in store.list_runs(limit=RUNS_SHOWN)]
    by_repo = store.iterations_by_repo(ITERATIONS_READ)
    curves, leaders = [], []
    bandit = ModelBandit(store, human_feedback_weight=human_feedback_weight)
    for repo in sorted(by_repo):
        scored = [r for r in by_repo[repo] if r.reward is not None]
        points = [(r.started_at, r.reward.value, r.status.value == "approved") for r in scored]  # type: ignore[union-attr]
        rewards = [p[1] for p in sorted(points, key=lambda p: p[0])]
        curves.append(RepoCurve(
            repo=repo, attempts=len(by_repo[repo]), approved=sum(1 for p in points if p[2]),
            mean_reward=statistics.fmean(rewards) if rewards else None, last_reward=rewards[-1] if rewards else None,
            svg=str(reward_curve_svg(points, title=f"Reward per attempt on {repo}")),
        ))
        models = sorted({r.model for r in by_repo[repo] if r.model})
        for arm in bandit.posteriors(repo, "generator", models) if models else []:
            mine = [r for r in by_repo[repo] if r.model == arm.model]
            values = [r.reward.value for r in mine if r.reward is not None]
            leaders.append(LeaderRow(
                repo=repo, model=arm.model, attempts=len(mine), approved=sum(1 for r in mine if r.status.value == "approved"),
                mean_reward=statistics.fmean(values) if values else None, posterior_mean=arm.mean, observations=arm.observations,
            ))
    leaders.sort(key=lambda row: (-row.posterior_mean, row.repo, row.model))
    report = bench_report(store, limit=ITERATIONS_READ)
    return Overview(runs=runs, curves=curves, top_issues=report.top_issues, leaderboard=leaders, iterations=sum(map(len, by_repo.values())))


def check_class(status: CheckStatus | str) -> str:
    return {"passed": "ok", "skipped": "muted"}.get(str(status), "bad")


templates.env.filters["check_class"] = check_class
templates.env.filters["pct"] = lambda v: "–" if v is None else f"{v:.0%}"
templates.env.filters["num"] = lambda v, digits=3: "–" if v is None else f"{v:.{digits}f}"
templates.env.filters["when"] = lambda v: "–" if v is None else f"{v:%Y-%m-%d %H:%M}"


# --- endpoints -------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    """`/`: the first-run setup until a GitHub App is configured, then the dashboard."""
    runtime: Runtime = request.app.state.runtime
    if runtime.credentials is None:
        return await setup.index(request)
    return await index(request)


async def index(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    data = await asyncio.to_thread(overview, runtime.store, human_feedback_weight=runtime.settings.human_feedback_weight)
    installations = await asyncio.to_thread(runtime.github_store.list_installations) if runtime.credentials else []
    return templates.TemplateResponse(request, "dashboard.html", {
        "data": data, "credentials": runtime.credentials, "installations": installations,
        "settings": runtime.settings, "signed": _token(request) is not None,
    })


async def run_page(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    run_id = request.path_params["run_id"]

    def load() -> tuple[RunInfo | None, RunSummary | None, list[EpisodeSummary]]:
        run = runtime.store.get_run(run_id)
        if run is None:
            return None, None, []
        return run, runtime.store.run_summary(run_id), runtime.store.list_episode_summaries(run_id)

    run, summary, episodes = await asyncio.to_thread(load)
    if run is None:
        return _not_found(request, f"There is no run {run_id!r}.")
    return templates.TemplateResponse(request, "dashboard_run.html", {"run": run, "summary": summary, "episodes": episodes})


async def episode_page(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    run_id, episode_id = request.path_params["run_id"], request.path_params["episode_id"]
    run = await asyncio.to_thread(runtime.store.get_run, run_id)
    episode = await asyncio.to_thread(runtime.store.get_episode, run_id, episode_id) if run else None
    if run is None or episode is None:
        return _not_found(request, f"There is no episode {episode_id!r} in run {run_id!r}.")
    chosen = episode.chosen_iteration()
    return templates.TemplateResponse(request, "episode.html", {"run": run, "episode": episode, "chosen": chosen})


def _not_found(request: Request, message: str) -> Response:
    return templates.TemplateResponse(request, "dashboard_missing.html", {"message": message}, status_code=404)


def routes() -> list[Route]:
    return [
        Route("/dashboard", index, methods=["GET"]),
        Route("/dashboard/login", login, methods=["GET", "POST"]),
        Route("/dashboard/runs/{run_id}", run_page, methods=["GET"]),
        Route("/dashboard/runs/{run_id}/{episode_id}", episode_page, methods=["GET"]),
    ]

