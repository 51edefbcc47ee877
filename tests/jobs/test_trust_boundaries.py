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
