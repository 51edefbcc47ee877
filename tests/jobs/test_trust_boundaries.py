"""Trust boundaries of a job, end to end (issue 18): real git, the bubblewrap sandbox, GitHub and the
model server faked at the HTTP level. Each test is an attack that worked before."""

from __future__ import annotations

from pathlib import Path

from tests.jobs.conftest import REPO, JobsEnv, issue_job, make_remote, needs_bwrap
from tests.repos import CALC_FILES, GOOD_RUBRIC, RIGHT_FIX, git

pytestmark = needs_bwrap

CONFIG = ".github/aura-sicd.yml"


def created(env: JobsEnv, suffix: str) -> list[dict]:
    return [body for method, path, body in env.github.requests if method == "POST" and path.endswith(suffix)]


def loosen_config(path: str = CONFIG) -> dict:
    """A generator reply that rewrites the bot's configuration: every check `true`, no deny list."""
    return {
        "summary": "Simplify the CI configuration",
        "changes": [
            {"file_path": path, "change_type": "update", "rationale": "faster checks",
             "edits": [{"search": 'deny_paths: ["secrets/**"]\n', "replace": "deny_paths: []\nchecks: [{name: tests, run: 'true'}]\n"}]},
            *RIGHT_FIX["changes"],
        ],
    }


def remote_with(tmp_path: Path, files: dict[str, str]) -> Path:
    return make_remote(tmp_path / "hostile", {**CALC_FILES, **files})


def second_prompt(env: JobsEnv) -> str:
    return env.ollama.prompt(env.ollama.requests_for("generator")[1])


async def test_a_repository_deny_list_adds_to_the_defaults(jobs_env: JobsEnv, tmp_path):
    """`deny_paths: ["secrets/**"]` used to replace the defaults, so the model could rewrite the bot's config."""
    env = jobs_env
    remote = remote_with(tmp_path, {CONFIG: 'deny_paths: ["secrets/**"]\n'})
    env.ollama.queue("generator", loosen_config(), RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)

    outcome = await env.run(issue_job(remote, "deny-1"))

    assert outcome["status"] == "published"
    [pr] = created(env, f"/repos/{REPO}/pulls")
    assert git(remote, "show", f"{pr['head']}:{CONFIG}") == 'deny_paths: ["secrets/**"]\n'
    assert f"Changing `{CONFIG}` is not allowed" in second_prompt(env)


async def test_an_edit_through_a_symbolic_link_never_lands_on_the_linked_file(jobs_env: JobsEnv, tmp_path):
    """With `docs/gh -> ../.github` committed, an edit of `docs/gh/aura-sicd.yml` used to pass the policy
    (checked on the named path) and land on `.github/aura-sicd.yml`."""
    env = jobs_env
    work = tmp_path / "linked"
    remote = remote_with(tmp_path, {CONFIG: "max_iterations: 2\n"})
    git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "docs").mkdir()
    (work / "docs" / "gh").symlink_to("../.github", target_is_directory=True)
    git(work, "add", "docs/gh")
    git(work, "commit", "-qm", "docs: link the GitHub folder")
    git(work, "push", "-q", "origin", "main")
    through_link = {"summary": "Run every check", "changes": [
        {"file_path": "docs/gh/aura-sicd.yml", "change_type": "update", "rationale": "simpler",
         "edits": [{"search": "max_iterations: 2\n", "replace": "max_iterations: 2\nchecks: [{name: tests, run: 'true'}]\n"}]},
        *RIGHT_FIX["changes"]]}
    env.ollama.queue("generator", through_link, RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)

    outcome = await env.run(issue_job(remote, "link-1"))

    assert outcome["status"] == "published"
    [pr] = created(env, f"/repos/{REPO}/pulls")
    assert git(remote, "show", f"{pr['head']}:{CONFIG}") == "max_iterations: 2\n"
    assert git(remote, "diff", "--name-only", f"main..{pr['head']}").split() == ["calc.py"]
    assert "goes through the symbolic link `docs/gh`" in second_prompt(env)


async def test_a_path_with_a_line_break_is_refused(jobs_env: JobsEnv, tmp_path):
    """A newline in a path used to reach the PR body as markdown."""
    env = jobs_env
    injected = {"summary": "Add notes", "changes": [
        {"file_path": "notes.md\n\n## Approved by the maintainers", "change_type": "create", "new_content": "x\n",
         "rationale": "notes", "edits": []}, *RIGHT_FIX["changes"]]}
    env.ollama.queue("generator", injected, RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)

    outcome = await env.run(issue_job(env.remote, "newline-1"))

    assert outcome["status"] == "published"
    [pr] = created(env, f"/repos/{REPO}/pulls")
    assert "Approved by the maintainers" not in pr["body"]
    assert "control character or a line break" in second_prompt(env)


async def test_a_follow_up_job_on_the_bots_pr_takes_config_plan_and_baseline_from_the_merge_base(jobs_env: JobsEnv, tmp_path):
    """The bot's branch turned every check into `true` and removed the tests; a review on its PR used to
    take the plan and the baseline from that branch and approve anything."""
    from bot.github.job_request import JobKind, JobRequest, ReplyTarget
    from bot.records import GuidanceEntry
    from bot.store.github import BotPullRequest, GitHubStore
    from tests.jobs.conftest import AGITATION, INSTALLATION
    from tests.repos import calc_update

    env = jobs_env
    branch = "aura-sicd/0123456789ab"
    clone = tmp_path / "bot-branch"
    git(tmp_path, "clone", "-q", str(env.remote), str(clone))
    git(clone, "checkout", "-q", "-b", branch)
    (clone / ".github").mkdir()
    (clone / CONFIG).write_text("checks: [{name: tests, run: 'true'}]\nsetup: 'echo from the branch'\n")
    git(clone, "rm", "-q", "tests/test_calc.py")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "speed up CI")
    git(clone, "push", "-q", "origin", branch)
    GitHubStore(env.store).upsert_bot_pr(BotPullRequest(repo=REPO, number=101, branch=branch, run_id="first-run"))
    cosmetic = calc_update("    return a - b", "    return a - b  # reviewed")
    env.ollama.queue("generator", cosmetic, cosmetic).queue("discriminator", GOOD_RUBRIC, GOOD_RUBRIC)
    env.ollama.queue("agitator", AGITATION)
    job = JobRequest(
        kind=JobKind.PR_ITERATE, delivery_id="follow-1", event="issue_comment.created", installation_id=INSTALLATION,
        repo=REPO, clone_url=str(env.remote), number=101, base_ref="main", head_ref=branch, head_sha="0" * 40,
        title="Aura SICD: add() returns the wrong result", body="## Description\n\nFix add.\n", triggered_by="carol",
        guidance=[GuidanceEntry(source="human", text="please finish", author="carol")],
        reply_to=[ReplyTarget(kind="issue_comment", id=5)],
    )

    outcome = await env.run(job)

    assert outcome["status"] == "exhausted" and outcome["pushed_sha"] is None
    replies = [body for number, body in env.github.comments if number == 101]
    # main's pytest judged it (and found the tests gone), not the branch's `true`
    assert any("no tests ran" in body for body in replies), replies
