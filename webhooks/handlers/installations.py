"""`installation` and `installation_repositories`: which accounts and repositories have the app."""

from __future__ import annotations

from bot.github.payloads import InstallationEvent, InstallationRepositoriesEvent
from webhooks.routing import HandlerContext, Outcome, Recorded, Router

router = Router()


async def _record(event: InstallationEvent, ctx: HandlerContext, *, active: bool, with_repos: bool) -> Outcome:
    inst = event.installation
    await ctx.call(
        ctx.store.record_installation,
        inst.id,
        account=inst.account.login if inst.account else None,
        app_id=inst.app_id,
        repository_selection=inst.repository_selection,
        repositories=[r.full_name for r in event.repositories] if with_repos else None,
        active=active,
    )
    return Recorded(f"installation {inst.id} {event.action}")


@router.register("installation", action="created")
async def installation_created(event: InstallationEvent, ctx: HandlerContext) -> Outcome:
    return await _record(event, ctx, active=True, with_repos=True)


@router.register("installation", action="deleted")
async def installation_deleted(event: InstallationEvent, ctx: HandlerContext) -> Outcome:
    return await _record(event, ctx, active=False, with_repos=False)


@router.register("installation", action="suspend")
async def installation_suspended(event: InstallationEvent, ctx: HandlerContext) -> Outcome:
    return await _record(event, ctx, active=False, with_repos=False)


@router.register("installation", action="unsuspend")
async def installation_unsuspended(event: InstallationEvent, ctx: HandlerContext) -> Outcome:
    return await _record(event, ctx, active=True, with_repos=False)


@router.register("installation_repositories", action="added")
async def repositories_added(event: InstallationRepositoriesEvent, ctx: HandlerContext) -> Outcome:
    await ctx.call(
        ctx.store.change_installation_repositories,
        event.installation.id, added=[r.full_name for r in event.repositories_added], removed=[],
    )
    return Recorded(f"installation {event.installation.id}: {len(event.repositories_added)} repositories added")


@router.register("installation_repositories", action="removed")
async def repositories_removed(event: InstallationRepositoriesEvent, ctx: HandlerContext) -> Outcome:
    await ctx.call(
        ctx.store.change_installation_repositories,
        event.installation.id, added=[], removed=[r.full_name for r in event.repositories_removed],
    )
    return Recorded(f"installation {event.installation.id}: {len(event.repositories_removed)} repositories removed")
