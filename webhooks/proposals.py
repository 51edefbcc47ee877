"""A pull request proposed through the admin API, published the way a job publishes its work.

In a worktree of the base branch (from the repository's mirror) the whole-file changes become the
applier's operations (`whole_file_changes`), the policy checks them against that checkout, then
`bot.edits.apply_changes` applies them and one commit carries them, with the proposal's id as a
trailer. `bot.jobs.git.push_commit` pushes it (fast-forward only) and `Publisher.open_pr` opens the PR
(or finds the open one). Asking again is safe: a branch that already has the proposal's commit is not
pushed to again, and the open PR is found, not opened twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.edits import EditError, UnsafePathError, apply_changes, safe_path, whole_file_update
from bot.github.client import GitHubApp
from bot.github.mirror import RepoMirror
from bot.github.publish import Publisher, PullRef
from bot.jobs.git import PushRejected, push_commit
from bot.cycle.policy import Policy
from bot.records import Change, ChangeType, PolicyDecision, Proposal
from bot.store.github import BotPullRequest, GitHubStore
from bot.workspace import RUN_TRAILER, commit_staged, run_git, trailer

if TYPE_CHECKING:
    from webhooks.admin_models import ProposedChange, ProposePR

PROPOSAL_TRAILER = "Aura-Proposal-Id"  # the commit's proposal: asking again finds it, nothing is pushed twice


class ProposalRefused(Exception):
    """The proposal cannot be published as asked: 422 (it does not fit the repository), 403 (the
    policy refuses it; `decision` says why) or 409 (its branch holds someone else's commits)."""

    def __init__(self, status_code: int, detail: str, decision: PolicyDecision | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.detail, self.decision = status_code, detail, decision


@dataclass
class Published:
    commit: str
    base: str
    pull: PullRef
    policy: PolicyDecision  # checked against the base branch's checkout


async def publish_proposal(
    proposal: ProposePR,
    body: str,
    *,
    github: GitHubApp,
    installation_id: int,
    mirror: RepoMirror,
    policy: Policy,
    github_store: GitHubStore,
    clone_url: str,
) -> Published:
    """Commit `proposal` on its branch, push it and open its PR with `body`; record it as a bot PR."""
    gh = github.installation_client(installation_id)
    repo_data = (await gh.rest.repos.async_get(proposal.repo_owner, proposal.repo_name)).json()
    base = proposal.base_branch or repo_data.get("default_branch") or "main"
    token = await github.installation_token(installation_id)
    commit, decision = await asyncio.to_thread(_commit_and_push, mirror, policy, proposal, base, clone_url, token)
    pr = await Publisher(gh, proposal.repo).open_pr(head=proposal.branch, base=base, title=proposal.title, body=body)
    await asyncio.to_thread(github_store.upsert_bot_pr, BotPullRequest(
        repo=proposal.repo, number=pr.number, branch=proposal.branch, base_ref=base,
        proposal_id=proposal.proposal_id, run_id=proposal.run_id, html_url=pr.html_url,
    ))
    return Published(commit=commit, base=base, pull=pr, policy=decision)


def _commit_and_push(
    mirror: RepoMirror, policy: Policy, proposal: ProposePR, base: str, clone_url: str, token: str | None
) -> tuple[str, PolicyDecision]:
    """Blocking (git): check, apply and commit in a worktree of `base`, then push; (commit, decision)."""
    repo, branch = proposal.repo, proposal.branch
    mirror_path = mirror.sync(repo, clone_url, token)
    if mirror.remote_sha(repo, base) is None:
        raise ProposalRefused(422, f"invalid request: base_branch: {repo} has no branch {base!r}")
    job = f"propose-{proposal.proposal_id}"
    worktree = mirror.add_worktree(repo, job, start=f"origin/{base}", branch=branch)
    try:
        changes = whole_file_changes(worktree, proposal.changes)
        decision = policy.evaluate(Proposal(summary=proposal.title, changes=changes), worktree)
        if not decision.allowed:
            raise ProposalRefused(403, "the policy refuses these changes: " + " ".join(decision.violations), decision)
        pushed = mirror.remote_sha(repo, branch)
        if pushed is not None and _has_commit_of(mirror_path, base, branch, proposal.proposal_id):
            return pushed, decision  # an earlier request pushed it
        try:
            apply_changes(worktree, changes)
        except EditError as exc:
            raise ProposalRefused(422, f"invalid request: {exc}") from exc
        run_git(["add", "--all"], worktree)
        if not run_git(["diff", "--cached", "--name-only"], worktree).strip():
            raise ProposalRefused(422, f"invalid request: the changes leave {base} as it is")
        commit = commit_staged(worktree, proposal.title,
                               {RUN_TRAILER: proposal.run_id, PROPOSAL_TRAILER: proposal.proposal_id})
    finally:
        mirror.remove_worktree(repo, job)
    try:
        push_commit(mirror_path, clone_url, token, commit, branch)
    except PushRejected as exc:
        raise ProposalRefused(409, f"{branch} exists on GitHub without this proposal's commit: {exc}") from exc
    return commit, decision


def _has_commit_of(mirror: Path, base: str, branch: str, proposal_id: str) -> bool:
    """Whether the fetched `branch` has, since `base`, a commit carrying the proposal's trailer."""
    found = run_git(["log", "--format=%H", "--fixed-strings", f"--grep={trailer(PROPOSAL_TRAILER, proposal_id)}",
                     f"refs/remotes/origin/{base}..refs/remotes/origin/{branch}"], mirror)
    return bool(found.strip())


def whole_file_changes(root: Path, proposed: list[ProposedChange]) -> list[Change]:
    """The applier's operations for whole-file changes, read against the checkout at `root`.

    A create stays a create and a delete a delete; an update becomes one edit that replaces the file's
    whole text (a blank file, which has no text to search for, is deleted and created again). Each must
    fit the checkout: what it updates or deletes exists, what it creates does not. A path that leaves
    the checkout is passed on unchecked: the policy refuses it.
    """
    changes = []
    for change in proposed:
        path, why = change.file_path, change.rationale
        kind = change.change_type
        try:
            target = safe_path(root, path)
        except UnsafePathError:  # passed on for the policy, which refuses it with its reason
            if kind is ChangeType.DELETE:
                changes.append(Change(file_path=path, change_type=kind, rationale=why))
            else:
                changes.append(Change(file_path=path, change_type=ChangeType.CREATE, new_content=change.new_content,
                                      rationale=why))
            continue
        if kind is ChangeType.DELETE and not target.is_file():
            raise ProposalRefused(422, f"invalid request: {path}: cannot delete, the base branch has no such file")
        if kind is ChangeType.UPDATE and not target.is_file():
            raise ProposalRefused(422, f"invalid request: {path}: cannot update, the base branch has no such "
                                       "file (use change_type create)")
        if kind is ChangeType.CREATE and target.exists():
            raise ProposalRefused(422, f"invalid request: {path}: cannot create, the file exists "
                                       "(use change_type update)")
        if kind is ChangeType.UPDATE and (update := whole_file_update(path, _text_of(target, path),
                                                                      _lf(change.new_content or ""), why)):
            changes.append(update)
        elif kind is ChangeType.UPDATE:  # a blank file: no text to search for, so it is replaced
            changes.append(Change(file_path=path, change_type=ChangeType.DELETE, rationale=why))
            changes.append(Change(file_path=path, change_type=ChangeType.CREATE, new_content=change.new_content,
                                  rationale=why))
        else:
            changes.append(Change(file_path=path, change_type=kind, new_content=change.new_content, rationale=why))
    return changes


def _text_of(path: Path, rel: str) -> str:
    """The file's text as the applier reads it (UTF-8, LF line ends)."""
    try:
        return _lf(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ProposalRefused(422, f"invalid request: {rel}: the file is not UTF-8 text") from None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
