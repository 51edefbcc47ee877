"""POST /admin/training/propose-pr: a dry run renders and touches nothing; a real one needs autonomy
off safe mode, commits in the mirror, pushes to the remote (a local bare repository) and opens the PR
through the GitHub layer (faked at the HTTP level)."""

from __future__ import annotations

import httpx
import pytest

from bot.jobs.memory_queue import InMemoryJobQueue
from tests.admin.conftest import AUTH, audit, make_settings
from tests.repos import git, make_repo
from tests.webhooks.conftest import make_client

FILES = {"calc.py": "def add(a, b):\n    return a - b\n", "README.md": "# calc\n"}
REQUEST = {
    "run_id": "train-7", "title": "Fix add", "description": "add() subtracted.",
    "changes": [
        {"file_path": "calc.py", "new_content": "def add(a, b):\n    return a + b\n", "change_type": "update",
         "rationale": "add must add"},
        {"file_path": "tests/test_calc.py", "new_content": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
         "change_type": "create", "rationale": "a test for it"},
    ],
    "repo_owner": "acme", "repo_name": "calc", "base_branch": "main",
}


def propose(client, **overrides):
    return client.post("/admin/training/propose-pr", json={**REQUEST, **overrides}, headers=AUTH)


@pytest.fixture
def remote(tmp_path, http, github):
    """acme/calc on 'GitHub': a bare repository as the remote, the App installed."""
    bare = tmp_path / "git" / "acme" / "calc.git"  # where AURA_GITHUB_GIT_URL (make_settings) points git
    git(tmp_path, "clone", "-q", "--bare", str(make_repo(tmp_path / "origin", FILES)), str(bare))
    github.installations["acme/calc"] = 77
    http.get("https://api.github.com/repos/acme/calc").mock(
        return_value=httpx.Response(200, json={"full_name": "acme/calc", "clone_url": str(bare), "default_branch": "main"}))
    return bare


@pytest.fixture
def autonomous(tmp_path, github, ollama):
    with make_client(make_settings(tmp_path, ENABLE_AUTONOMY=True, SAFE_MODE=False), InMemoryJobQueue()) as c:
        yield c


def test_a_dry_run_returns_the_proposal_and_touches_nothing(client, github, tmp_path):
    answer = propose(client, dry_run=True)
    assert answer.status_code == 200
    body = answer.json()
    assert body["branch"] == f"aura-sicd/{body['proposal_id']}" and len(body["proposal_id"]) == 12
    assert body["dry_run"] is True and body["pull_request"] is None and body["commit"] is None
    assert "- **UPDATE**: `calc.py`" in body["body"] and "add must add" in body["body"]
    assert "Training Run ID: `train-7`" in body["body"] and body["title"] == "Fix add"
    assert body["policy"]["allowed"] is True and 0 < body["risk_score"] == body["policy"]["risk_score"]
    assert github.requests == []  # no GitHub call
    assert not (client.app.state.runtime.settings.data_dir / "mirrors").exists()  # no git
    [entry] = audit(client, "training.propose_pr")
    assert (entry.decision, entry.risk_score, entry.run_id) == ("dry_run", body["risk_score"], "train-7")
    # the same request names the same proposal; other changes another
    assert propose(client).json()["proposal_id"] == body["proposal_id"]
    assert propose(client, title="Fix add, again").json()["proposal_id"] != body["proposal_id"]


def test_the_dry_run_is_the_default_and_safe_mode_refuses_a_real_one(client, github):
    assert propose(client).json()["dry_run"] is True
    refused = propose(client, dry_run=False)
    assert refused.status_code == 403 and "ENABLE_AUTONOMY" in refused.json()["detail"]


def test_autonomy_without_safe_mode_off_is_refused(tmp_path, github, ollama):
    with make_client(make_settings(tmp_path, ENABLE_AUTONOMY=True), InMemoryJobQueue()) as client:
        refused = propose(client, dry_run=False)
        assert refused.status_code == 403 and "SAFE_MODE" in refused.json()["detail"]
        [entry] = audit(client, "training.propose_pr")
    assert entry.decision == "refused" and entry.risk_score is not None and github.requests == []


def test_the_policy_refuses_protected_paths_with_its_reason(autonomous, github):
    change = {"file_path": ".github/workflows/ci.yml", "new_content": "on: push\n", "change_type": "create"}
    preview = propose(autonomous, changes=[change], dry_run=True).json()
    assert preview["policy"]["allowed"] is False and preview["risk_score"] >= 0.9
    refused = propose(autonomous, changes=[change], dry_run=False)
    assert refused.status_code == 403 and ".github/workflows/**" in refused.json()["detail"]
    assert github.requests == []


@pytest.mark.parametrize(("change", "says"), [
    ({"file_path": "a.py", "change_type": "create"}, "needs new_content"),
    ({"file_path": "a.py", "change_type": "delete", "new_content": "x"}, "a delete carries no new_content"),
    ({"file_path": "a.py", "change_type": "rename", "new_content": "x"}, "change_type"),
])
def test_malformed_changes_are_422(client, change, says):
    answer = propose(client, changes=[change])
    assert answer.status_code == 422 and says in answer.json()["detail"]


def test_a_real_proposal_is_pushed_and_opened_as_a_pull_request(autonomous, github, remote):
    answer = propose(autonomous, dry_run=False)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    branch = body["branch"]
    assert git(remote, "show", f"{branch}:calc.py") == "def add(a, b):\n    return a + b\n"
    assert "assert add(2, 3) == 5" in git(remote, "show", f"{branch}:tests/test_calc.py")
    assert git(remote, "rev-parse", branch).strip() == body["commit"]
    assert "Aura-Proposal-Id: " + body["proposal_id"] in git(remote, "log", "-1", "--format=%B", branch)
    [(_, _, created)] = [r for r in github.requests if r[0] == "POST" and r[1] == "/repos/acme/calc/pulls"]
    assert (created["head"], created["base"], created["title"]) == (branch, "main", "Fix add")
    assert "add must add" in created["body"]
    assert body["pull_request"]["number"] == 101
    # checked against the checkout: the update changes one line of two, the new test adds five
    assert body["policy"]["lines_added"] == 5 and body["risk_score"] == body["policy"]["risk_score"]
    stored = autonomous.app.state.runtime.github_store.get_bot_pr_by_branch("acme/calc", branch)
    assert (stored.number, stored.run_id, stored.proposal_id) == (101, "train-7", body["proposal_id"])
    assert [a.decision for a in audit(autonomous, "training.propose_pr")] == ["opened"]
    # asking again finds the open PR and the pushed branch: no second PR, no new commit
    again = propose(autonomous, dry_run=False).json()
    assert again.get("pull_request", {}).get("number") == 101 and again["commit"] == body["commit"], again
    assert len([r for r in github.requests if r[0] == "POST" and r[1] == "/repos/acme/calc/pulls"]) == 1


def test_an_update_of_a_missing_file_is_refused_before_anything_is_pushed(autonomous, github, remote):
    change = {"file_path": "nope.py", "new_content": "x = 1\n", "change_type": "update"}
    answer = propose(autonomous, changes=[change], dry_run=False)
    assert answer.status_code == 422 and "use change_type create" in answer.json()["detail"]
    assert git(remote, "branch", "--list", "aura-sicd/*").strip() == ""
    assert not [r for r in github.requests if r[1].endswith("/pulls")]


def test_an_unknown_base_branch_is_refused(autonomous, github, remote):
    answer = propose(autonomous, dry_run=False, base_branch="develop")
    assert answer.status_code == 422 and "no branch 'develop'" in answer.json()["detail"]


def test_the_policy_is_checked_against_the_checkout(autonomous, github, remote, tmp_path):
    """A path through a symbolic link of the repository passes the preview, not the real check."""
    work = tmp_path / "push-link"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "outside").symlink_to(tmp_path)
    git(work, "add", "outside")
    git(work, "commit", "-qm", "a link out of the repository")
    git(work, "push", "-q", "origin", "main")
    change = {"file_path": "outside/escaped.py", "new_content": "x = 1\n", "change_type": "create"}
    assert propose(autonomous, changes=[change], dry_run=True).json()["policy"]["allowed"] is True
    refused = propose(autonomous, changes=[change], dry_run=False)
    assert refused.status_code == 403 and "symbolic link" in refused.json()["detail"]
    assert not (tmp_path / "escaped.py").exists()
    assert git(remote, "branch", "--list", "aura-sicd/*").strip() == ""
    assert [a.decision for a in audit(autonomous, "training.propose_pr")] == ["refused", "dry_run"]  # newest first


def test_a_branch_holding_someone_elses_commits_is_not_pushed_to(autonomous, github, remote, tmp_path):
    branch = propose(autonomous).json()["branch"]  # a dry run names the branch
    work = tmp_path / "squatter"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    git(work, "commit", "-q", "--allow-empty", "-m", "not the proposal")
    git(work, "push", "-q", "origin", f"HEAD:{branch}")
    theirs = git(remote, "rev-parse", branch).strip()
    answer = propose(autonomous, dry_run=False)
    assert answer.status_code == 409 and branch in answer.json()["detail"]
    assert git(remote, "rev-parse", branch).strip() == theirs  # never forced
    assert not [r for r in github.requests if r[0] == "POST" and r[1].endswith("/pulls")]
