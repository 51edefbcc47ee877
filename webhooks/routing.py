"""(event, action) → handler, in the manner of gidgethub's Router.

    router = Router()

    @router.register("issues", action="labeled")
    async def issue_labeled(event: IssuesEvent, ctx: HandlerContext) -> Outcome: ...

The payload model is the annotation of the handler's first parameter: the router validates the
delivery into it before the call. A handler decides quickly and returns an `Outcome`: `Ignored` (with
the reason), `Recorded` (it wrote what it had to, e.g. an installation) or a `JobRequest` for the queue.
Nothing slow runs in a handler: no GitHub calls, no git, no models.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias, get_type_hints

from pydantic import BaseModel

from bot.config import Settings
from bot.github.job_request import JobRequest
from bot.github.payloads import Event
from bot.store.github import BotPullRequest, GitHubStore


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Recorded:
    summary: str


Outcome: TypeAlias = Ignored | Recorded | JobRequest


@dataclass
class HandlerContext:
    delivery_id: str
    event: str
    settings: Settings
    store: GitHubStore
    repo_labels: dict[str, str] = field(default_factory=dict)  # repo → label from its .github/aura-sicd.yml

    def is_trigger_label(self, repo: str, label: str) -> bool:
        return label == self.repo_labels.get(repo, self.settings.trigger_label)

    async def bot_pr(self, repo: str, number: int) -> BotPullRequest | None:
        return await asyncio.to_thread(self.store.get_bot_pr_by_number, repo, number)

    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a (fast, blocking) store call off the event loop."""
        return await asyncio.to_thread(func, *args, **kwargs)


Handler: TypeAlias = Callable[[Any, HandlerContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class Route:
    event: str
    action: str | None
    model: type[Event]
    handler: Handler


class Router:
    def __init__(self, *routers: Router) -> None:
        self._routes: dict[tuple[str, str | None], Route] = {}
        for router in routers:
            for route in router._routes.values():
                self._add(route)

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        """Route `event` (and `action`, or every action when None) to the decorated handler."""

        def decorator(func: Handler) -> Handler:
            self._add(Route(event, action, _payload_model(func), func))
            return func

        return decorator

    def lookup(self, event: str, action: str | None) -> Route | None:
        return self._routes.get((event, action)) or self._routes.get((event, None))

    @property
    def events(self) -> set[str]:
        return {event for event, _ in self._routes}

    def _add(self, route: Route) -> None:
        key = (route.event, route.action)
        if key in self._routes:
            raise ValueError(f"{route.event}.{route.action or '*'} already has a handler")
        self._routes[key] = route


def _payload_model(func: Handler) -> type[Event]:
    params = list(inspect.signature(func).parameters)
    hints = get_type_hints(func)
    model = hints.get(params[0]) if params else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{func.__name__}: annotate the first parameter with the payload model")
    return model
