"""Issue jobs through the durable queue: the exact GitHub requests, the pushed branch, the stored PR."""

from __future__ import annotations

from pathlib import Path

from bot.github.messages import progress_marker
from bot.store.github import GitHubStore
from tests.fakes.github import TOKEN
from tests.jobs.conftest import AGITATION, INSTALLATION, REPO, JobsEnv, issue_job
from tests.repos import GOOD_RUBRIC, NO_CHANGE, RIGHT_FIX, WEAK_RUBRIC, WRONG_FIX


def created(env: JobsEnv, suffix: str) -> list[dict]:
    return [body for method, path, body in env.github.requests if method == "POST" and path.endswith(suffix)]


async def test_approved_issue_opens_one_pr_that_closes_it(jobs_env: JobsEnv):
    env = jobs_env
    env.ollama.queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    env.github._comment_bodies[900] = (12, "Seen on Python 3.12 too.")  # the issue's discussion

    outcome = await env.run(issue_job(env.remote))

    assert outcome["status"] == "published"
    [pr] = created(env, f"/repos/{REPO}/pulls")
    branch = pr["head"]
    assert branch.startswith("aura-sicd/") and len(branch) == len("aura-sicd/") + 12
    assert pr["base"] == "main" and pr["draft"] is False
    assert pr["title"] == "Aura SICD: add() returns the wrong result"
    assert "Closes #12" in pr["body"] and "add must add" in pr["body"]
    # the branch is on the remote with the fix, and the check run sits on exactly that commit
    sha = env.remote_sha(branch)
    assert sha == outcome["pushed_sha"]
    assert "return a + b" in env.remote_file(branch, "calc.py")
    [check] = created(env, f"/repos/{REPO}/check-runs")
    assert check["head_sha"] == sha and check["conclusion"] == "success" and check["status"] == "completed"
    assert "`tests`" in check["output"]["summary"] or "pytest" in check["output"]["summary"]
    # review requested from whoever triggered it; the issue gets the link; the label goes
    assert created(env, f"/pulls/{outcome['pr_number']}/requested_reviewers") == [{"reviewers": ["alice"]}]
    comments = [body for number, body in env.github.comments if number == 12]
    assert progress_marker("delivery-1") in comments[0]  # the progress comment, created once
    assert any(outcome["pr_url"] in body and "opened a pull request" in body for body in comments)
    assert ("DELETE", f"/repos/{REPO}/issues/12/labels/aura-sicd", None) in env.github.requests
    # the progress comment was edited in place, ending with the outcome and a dashboard link
    edits = [body for method, path, body in env.github.requests if method == "PATCH" and "/issues/comments/" in path]
    assert edits and "done: published" in edits[-1]["body"] and "https://bot.example.com/dashboard/runs/" in edits[-1]["body"]
    # the task carried the issue's discussion
    assert "Seen on Python 3.12 too." in env.ollama.prompt(env.ollama.requests_for("generator")[0])
    # the PR is on record for later iterations and feedback
    stored = GitHubStore(env.store).get_bot_pr_by_branch(REPO, branch)
    assert stored is not None and stored.number == outcome["pr_number"] and stored.issue_number == 12
    assert stored.run_id == outcome["run_id"]
    # the token never reached DBOS's tables or the store
    for db in (env.settings.data_dir / "dbos.sqlite", env.settings.database_url.removeprefix("sqlite:///")):
        assert TOKEN.encode() not in Path(db).read_bytes()


async def test_exhausted_issue_opens_a_draft_and_says_what_was_tried(jobs_env: JobsEnv):
    env = jobs_env
    env.ollama.queue("generator", WRONG_FIX, WRONG_FIX).queue("discriminator", WEAK_RUBRIC, WEAK_RUBRIC)
    env.ollama.queue("agitator", AGITATION)

    outcome = await env.run(issue_job(env.remote, "delivery-2"))

    assert outcome["status"] == "exhausted"
    [pr] = created(env, f"/repos/{REPO}/pulls")
    assert pr["draft"] is True and pr["title"].startswith("[draft] ") and "Closes #12" in pr["body"]
    [check] = created(env, f"/repos/{REPO}/check-runs")
    assert check["conclusion"] == "failure"
    [report] = [body for number, body in env.github.comments if number == 12 and "could not produce" in body]
    assert "iteration 1" in report and "iteration 2" in report
    assert "Failing checks of the best attempt" in report and "test_add" in report
    assert outcome["pr_url"] in report
    assert "return a * b" in env.remote_file(pr["head"], "calc.py")


async def test_no_change_needed_ends_with_a_comment_and_its_evidence(jobs_env: JobsEnv, tmp_path: Path):
    from tests.jobs.conftest import make_remote
    from tests.repos import CALC_FILES

    env = jobs_env
    fixed = make_remote(tmp_path / "fixed", {**CALC_FILES, "calc.py": CALC_FILES["calc.py"].replace("a - b", "a + b")})
    env.ollama.queue("generator", NO_CHANGE)

    outcome = await env.run(issue_job(fixed, "delivery-3"))

    assert outcome["status"] == "no_change"
    assert created(env, f"/repos/{REPO}/pulls") == []
    assert any("no change is needed" in body and "add already adds" in body and "none that relates to the task fails"
               in body for _, body in env.github.comments)


async def test_no_change_needed_is_not_accepted_while_the_tasks_test_fails(jobs_env: JobsEnv):
    env = jobs_env
    env.ollama.queue("generator", NO_CHANGE, NO_CHANGE)

    outcome = await env.run(issue_job(env.remote, "delivery-7"))

    assert outcome["status"] != "no_change"
    assert not any("no change is needed" in body for _, body in env.github.comments)


async def test_invalid_repo_config_is_reported_and_nothing_runs(jobs_env: JobsEnv, tmp_path):
    from tests.jobs.conftest import make_remote
    from tests.repos import CALC_FILES

    env = jobs_env
    remote = make_remote(tmp_path / "bad", {**CALC_FILES, ".github/aura-sicd.yml": "max_iterations: 0\nlabels: x\n"})

    outcome = await env.run(issue_job(remote, "delivery-4"))

    assert outcome["status"] == "invalid_config"
    [text] = [body for _, body in env.github.comments if "is not valid" in body]
    assert "max_iterations" in text and "labels: unknown key" in text and "defaults are not used" in text
    assert env.ollama.requests == []


async def test_a_redelivered_job_does_not_run_twice(jobs_env: JobsEnv):
    env = jobs_env
    env.ollama.queue("generator", RIGHT_FIX)
    env.ollama.always("discriminator", GOOD_RUBRIC)
    job = issue_job(env.remote, "delivery-5")
    await env.run(job)
    assert await env.queue.enqueue(job) is False
    assert len(env.ollama.requests_for("generator")) == 1


async def test_feedback_job_records_the_merge(jobs_env: JobsEnv):
    from bot.github.job_request import JobKind, JobRequest
    from bot.store.github import BotPullRequest

    env = jobs_env
    store = GitHubStore(env.store)
    store.upsert_bot_pr(BotPullRequest(repo=REPO, number=101, branch="aura-sicd/abcdef012345", run_id="r1"))
    job = JobRequest(kind=JobKind.FEEDBACK, delivery_id="delivery-6", event="pull_request.closed",
                     installation_id=INSTALLATION, repo=REPO, clone_url=str(env.remote), number=101,
                     head_ref="aura-sicd/abcdef012345", triggered_by="bob", merged=True)

    outcome = await env.run(job)

    assert outcome["status"] == "feedback"
    [feedback] = store.list_feedback(repo=REPO)
    assert feedback.merged and feedback.run_id == "r1" and feedback.actor == "bob"
    assert store.get_bot_pr_by_number(REPO, 101).state == "merged"
    assert env.github.requests == []  # feedback needs nothing from GitHub


def git_branches(env: JobsEnv) -> list[str]:
    from tests.repos import git

    return git(env.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
