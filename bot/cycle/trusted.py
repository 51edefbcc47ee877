"""The trusted commit of an episode: where its check plan, setup and baseline come from.

The code under change never decides how it is judged. A job on an issue starts from the default branch,
which is its own trusted commit. A follow-up job on the bot's own pull request (a review, `/improve`)
continues the bot's branch, whose files the model wrote: its `pip install -e .`, npm install scripts,
`.github/aura-sicd.yml` and tests are not to be trusted, so the sandbox is opened (plan detected, setup
run) and the baseline taken on the merge base of that branch with the default branch instead. The
attempts' checks still run on the branch plus the attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.workspace import Workspace, create_worktree, delete_branch, remove_worktree, reset_worktree, resolve_commit


@asynccontextmanager
async def trusted_workspace(ws: Workspace, trusted_ref: str | None) -> AsyncIterator[Workspace]:
    """`ws` itself (reset to its base) when the trusted commit is its base, else a worktree of the trusted
    commit next to it, removed on leaving."""
    await asyncio.to_thread(reset_worktree, ws)
    if trusted_ref is None:
        yield ws
        return
    sha = await asyncio.to_thread(resolve_commit, ws.source_repo, trusted_ref)
    if sha == ws.base_sha:
        yield ws
        return
    branch = f"aura-sicd-trusted/{ws.proposal_id}"
    trusted = await asyncio.to_thread(
        create_worktree, ws.source_repo, base_ref=sha, branch=branch, proposal_id=f"{ws.proposal_id}.trusted",
        worktrees_dir=Path(ws.path).parent,
    )
    try:
        yield trusted
    finally:
        await asyncio.to_thread(remove_worktree, ws.source_repo, trusted.path)
        await asyncio.to_thread(delete_branch, ws.source_repo, branch)
