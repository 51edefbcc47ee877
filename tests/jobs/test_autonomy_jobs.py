"""Scheduled scans through the durable queue: the scheduler's SCAN job finds the failing test on the default
branch, its FINDING job opens one labelled PR linked to the finding; later scans leave an open or a
closed finding alone."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.jobs.job_steps import current_services
from bot.jobs.scheduler import AutonomyScheduler, GitHubRepoSource
from bot.store.github import GitHubStore
from tests.jobs.conftest import AGITATION, INSTALLATION, REPO, JobsEnv, make_remote, result_of
from tests.repos import CALC_FILES, GOOD_RUBRIC, RIGHT_FIX, WEAK_RUBRIC, WRONG_FIX, git

CONFIG = "autonomy: {schedule: '0 3 * * 1', max_open_prs: 2, label: found-by-aura}\n"
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
FINDING = "test:tests/test_calc.py::test_add"


def finding_id(remote: Path) -> str:
    """The FINDING job of the failing test on the remote's main as it is now."""
    sha = git(remote, "rev-parse", "main").strip()
    return f"finding:{REPO}:{hashlib.sha256(FINDING.encode()).hexdigest()[:16]}@{sha[:12]}"


def serve_repository(env: JobsEnv, remote: Path) -> None:
    mock, api = env.github.mock, env.github.api
    mock.get(f"{api}/repos/{REPO}").mock(return_value=httpx.Response(
        200, json={"default_branch": "main", "clone_url": str(remote)}))
    content = {"type": "file", "encoding": "base64", "content": base64.b64encode(CONFIG.encode()).decode()}
    mock.get(f"{api}/repos/{REPO}/contents/.github/aura-sicd.yml").mock(return_value=httpx.Response(200, json=content))
    mock.post(url__regex=rf"{api}/repos/{REPO}/issues/\d+/labels$").mock(side_effect=env.github._echo(200, []))


async def test_a_scheduled_scan_opens_a_labelled_pr_per_finding_and_never_repeats_a_closed_one(jobs_env: JobsEnv, tmp_path):
    env = jobs_env
    env.settings.enable_autonomy, env.settings.safe_mode = True, False
    remote = make_remote(tmp_path / "scanned", {**CALC_FILES, ".github/aura-sicd.yml": CONFIG})
    serve_repository(env, remote)
    github_store = GitHubStore(env.store)
    github_store.record_installation(INSTALLATION, account="octo", repositories=[REPO])
    env.ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    clock = [MONDAY_3AM + timedelta(minutes=1)]
    scheduler = AutonomyScheduler(env.settings, github_store, env.queue, GitHubRepoSource(current_services().github),
                                  clock=lambda: clock[0])

    [scan] = await scheduler.tick()
    outcome = await result_of(scan.delivery_id, timeout=120)
    assert outcome["status"] == "scanned" and outcome["detail"].endswith(f"1 enqueued: {FINDING}")
    published = await result_of(finding_id(remote), timeout=120)

    assert published["status"] == "published" and published["detail"] == FINDING
    [pr] = [body for method, path, body in env.github.requests if method == "POST" and path == f"/repos/{REPO}/pulls"]
    assert pr["title"] == f"Aura SICD: Fix the failing test {FINDING.removeprefix('test:')}" and pr["draft"] is False
    assert "## Finding" in pr["body"] and f"<!-- aura-sicd:finding {FINDING} -->" in pr["body"]
    assert "Closes #" not in pr["body"]
    assert ("POST", f"/repos/{REPO}/issues/{published['pr_number']}/labels", {"labels": ["found-by-aura"]}) in env.github.requests
    assert "return a + b" in git(remote, "show", f"{pr['head']}:calc.py")
    assert not env.github.comments  # no issue to comment on
    assert github_store.finding_pull_states(REPO) == {FINDING: "open"}

    # next week the PR is still open: the scan runs (1 of 2 PRs open) but leaves the finding alone
    clock[0] += timedelta(days=7)
    [again] = await scheduler.tick()
    assert (await result_of(again.delivery_id, timeout=120))["detail"].endswith("0 enqueued: ")
    # a maintainer closes it unmerged: the finding is never worked again
    github_store.set_bot_pr_state(REPO, published["pr_number"], "closed")
    clock[0] += timedelta(days=7)
    [third] = await scheduler.tick()
    assert (await result_of(third.delivery_id, timeout=120))["detail"].endswith("0 enqueued: ")
    assert len(env.ollama.requests_for("generator")) == 1


async def test_a_finding_that_was_not_fixed_is_tried_again_only_on_a_new_commit(jobs_env: JobsEnv, tmp_path):
    env = jobs_env
    env.settings.enable_autonomy, env.settings.safe_mode = True, False
    remote = make_remote(tmp_path / "scanned", {**CALC_FILES, ".github/aura-sicd.yml": CONFIG})
    serve_repository(env, remote)
    github_store = GitHubStore(env.store)
    github_store.record_installation(INSTALLATION, account="octo", repositories=[REPO])
    env.ollama.always("generator", WRONG_FIX).always("discriminator", WEAK_RUBRIC).always("agitator", AGITATION)
    clock = [MONDAY_3AM]
    scheduler = AutonomyScheduler(env.settings, github_store, env.queue, GitHubRepoSource(current_services().github),
                                  clock=lambda: clock[0])

    [scan] = await scheduler.tick()
    assert (await result_of(scan.delivery_id, timeout=120))["detail"].endswith(f"1 enqueued: {FINDING}")
    first = await result_of(finding_id(remote), timeout=120)
    assert first["status"] == "exhausted" and github_store.finding_pull_states(REPO) == {}
    assert len(env.ollama.requests_for("generator")) == 2  # AURA_MAX_ITERATIONS=2 attempts, no PR, no draft
    assert not [p for m, p, _ in env.github.requests if m == "POST" and p.endswith("/pulls")]

    clock[0] += timedelta(days=7)  # main has not moved: the finding is not worked again
    [same_commit] = await scheduler.tick()
    detail = (await result_of(same_commit.delivery_id, timeout=120))["detail"]
    assert detail.endswith(f"0 enqueued: ; already worked on this commit: {FINDING}")
    assert len(env.ollama.requests_for("generator")) == 2

    push_commit(tmp_path, remote)  # someone pushes to main: a new commit, a new try
    clock[0] += timedelta(days=7)
    [moved] = await scheduler.tick()
    assert (await result_of(moved.delivery_id, timeout=120))["detail"].endswith(f"1 enqueued: {FINDING}")
    assert (await result_of(finding_id(remote), timeout=120))["status"] == "exhausted"
    assert len(env.ollama.requests_for("generator")) == 4


def push_commit(tmp_path: Path, remote: Path) -> None:
    work = tmp_path / "pusher"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "README.md").write_text("# calc\n\nA tiny calculator, now documented.\n")
    git(work, "commit", "-qam", "docs: say more")
    git(work, "push", "-q", "origin", "main")
