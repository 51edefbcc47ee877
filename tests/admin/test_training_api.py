"""POST /admin/training/start and the reads of runs and episodes: auth, flags, validation, audit, and
real training runs in the background (models faked at the HTTP level, real git, bubblewrap sandbox)."""

from __future__ import annotations

import httpx
import pytest

from bot.jobs.memory_queue import InMemoryJobQueue
from bot.records import EpisodeStatus, Task
from tests.admin.conftest import AUTH, TOKEN, audit, make_settings
from tests.builders import iteration, save_episode
from tests.repos import git, make_repo
from tests.webhooks.conftest import make_client

FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}
RIGHT = {"summary": "add uses +", "changes": [{"file_path": "calc.py", "change_type": "update", "new_content": None,
         "rationale": "add must add", "edits": [{"search": "    return a - b", "replace": "    return a + b"}]}]}
GOOD = {"coverage": 0.9, "accuracy": 0.95, "coherence": 0.9, "formatting": 0.9, "issues": [], "comments": []}


def start(client, **body):
    return client.post("/admin/training/start", json=body, headers=AUTH)


# --- the gate ---------------------------------------------------------------------------------------


def test_without_a_token_configured_the_admin_api_is_off(tmp_path, github, ollama):
    with make_client(make_settings(tmp_path, admin_token=None), InMemoryJobQueue()) as client:
        answer = client.post("/admin/training/start", json={}, headers=AUTH)
        assert answer.status_code == 404 and "AURA_ADMIN_TOKEN" in answer.json()["detail"]
        assert client.get("/admin/training/runs", headers=AUTH).status_code == 404
        schema = client.get("/admin/openapi.json").json()  # the schema is documentation: always served
    assert {"/admin/training/start", "/admin/training/propose-pr", "/admin/training/runs/{run_id}/summary",
            "/admin/training/episodes/{run_id}", "/admin/training/episodes/{run_id}/{episode_id}",
            "/admin/memory", "/admin/memory/{repo}", "/admin/memory/{repo}/{guidance_id}"} <= set(schema["paths"])
    start_op = schema["paths"]["/admin/training/start"]["post"]
    assert start_op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TrainingStart"}
    assert "episodes" in schema["components"]["schemas"]["TrainingStart"]["properties"]
    assert schema["components"]["schemas"]["ProposedChange"]["properties"]["change_type"]


def test_a_wrong_or_missing_token_is_refused_and_not_audited(client):
    assert client.get("/admin/training/runs").status_code == 401
    wrong = client.post("/admin/training/start", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "Bearer" in wrong.json()["detail"]
    assert client.get("/admin/training/runs", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.app.state.runtime.store.list_audit() == []


def test_training_is_refused_with_the_flag_named_and_audited(tmp_path, github, ollama):
    repo = make_repo(tmp_path / "calc", FILES)
    with make_client(make_settings(tmp_path, ENABLE_TRAINING=False), InMemoryJobQueue()) as client:
        answer = start(client, task_description="Fix add", path=str(repo))
        assert answer.status_code == 403 and "ENABLE_TRAINING" in answer.json()["detail"]
        [entry] = audit(client, "training.start")
    assert (entry.decision, entry.risk_score, entry.actor) == ("refused", 0.1, "admin-api")
    assert "ENABLE_TRAINING" in entry.details["reason"]


def test_safe_mode_allows_only_dry_runs(client, tmp_path):
    repo = make_repo(tmp_path / "calc", FILES)
    answer = start(client, task_description="Fix add", path=str(repo), dry_run=False)
    assert answer.status_code == 403 and "SAFE_MODE" in answer.json()["detail"]
    [entry] = audit(client, "training.start")
    assert (entry.decision, entry.risk_score) == ("refused", 0.3)


@pytest.mark.parametrize(("body", "says"), [
    ({"task_description": "Fix add"}, "exactly one of `repo`"),
    ({"task_description": "Fix add", "repo": "o/r", "path": "/tmp"}, "exactly one of `repo`"),
    ({"task_description": "Fix add", "path": "/tmp", "episodes": 3, "files": ["a.py", "b.py"]}, "multiple of the number of tasks (2"),
    ({"task_description": "", "path": "/tmp"}, "task_description"),
    ({"task_description": "x", "path": "/tmp", "episodes": 0}, "episodes"),
    ({"task_description": "x", "repo": "not a repo"}, "repo"),
    ({"task_description": "x", "path": "/tmp", "epochs": 2}, "epochs: Extra inputs are not permitted"),
])
def test_invalid_requests_get_422_with_what_is_wrong(client, body, says):
    answer = start(client, **body)
    assert answer.status_code == 422
    assert says in answer.json()["detail"], answer.json()
    assert answer.json()["errors"]


def test_a_path_that_is_not_a_git_repository_is_refused(client, tmp_path):
    (tmp_path / "plain").mkdir()
    answer = start(client, task_description="Fix add", path=str(tmp_path / "plain"))
    assert answer.status_code == 422 and "not a git repository" in answer.json()["detail"]


def test_unknown_runs_and_episodes_are_404(client):
    assert client.get("/admin/training/runs/nope/summary", headers=AUTH).status_code == 404
    assert client.get("/admin/training/episodes/nope", headers=AUTH).json()["detail"] == "unknown run 'nope'"


def test_reads_of_stored_runs_summaries_and_episodes(client):
    store = client.app.state.runtime.store
    task = Task(title="Fix add", repo="acme/calc")
    save_episode(store, "run-1", "ep-1", task, [iteration("run-1", "ep-1", 1, reward=0.4), iteration("run-1", "ep-1", 2, reward=0.9)],
                 status=EpisodeStatus.APPROVED, kind="training")
    save_episode(store, "run-1", "ep-2", task, [], status=EpisodeStatus.RUNNING, number=2, kind="training")
    summary = client.get("/admin/training/runs/run-1/summary", headers=AUTH).json()
    assert {k: summary[k] for k in ("total_episodes", "completed", "failed", "in_progress", "status", "repo")} == {
        "total_episodes": 2, "completed": 1, "failed": 0, "in_progress": 1, "status": "running", "repo": "acme/calc"}
    assert {"total_tokens_used", "total_changes_proposed", "total_actions"} <= set(summary)
    episodes = client.get("/admin/training/episodes/run-1", headers=AUTH).json()["episodes"]
    assert [e["episode_id"] for e in episodes] == ["ep-1", "ep-2"] and len(episodes[0]["iterations"]) == 2
    brief = client.get("/admin/training/episodes/run-1?summary=1", headers=AUTH).json()["episodes"]
    assert brief[0]["best_reward"] == 0.9 and "iterations" in brief[0] and brief[0]["iterations"] == 2
    one = client.get("/admin/training/episodes/run-1/ep-1", headers=AUTH).json()
    assert one["status"] == "approved" and one["iterations"][1]["reward"]["value"] == 0.9
    assert client.get("/admin/training/episodes/run-1/ep-9", headers=AUTH).status_code == 404
    runs = client.get("/admin/training/runs?kind=training", headers=AUTH).json()
    assert [r["run_id"] for r in runs] == ["run-1"]
    assert client.get("/admin/training/runs?limit=0", headers=AUTH).status_code == 422


# --- real runs ------------------------------------------------------------------------------------


def wait_for(client, run_id: str) -> dict:
    client.portal.call(client.app.state.training.wait, run_id)
    return client.get(f"/admin/training/runs/{run_id}/summary", headers=AUTH).json()


@pytest.mark.bwrap
def test_a_training_run_on_a_local_path_runs_in_the_background(client, ollama, tmp_path):
    repo = make_repo(tmp_path / "calc", FILES)
    ollama.queue("generator", RIGHT, RIGHT)
    ollama.queue("discriminator", GOOD, GOOD)
    answer = start(client, run_id="train-local", task_description="add() returns the wrong result\nadd(2, 3) should be 5",
                   path=str(repo), episodes=2)
    assert answer.status_code == 202
    body = answer.json()
    assert (body["run_id"], body["epochs"], body["tasks"], body["dry_run"], body["risk_score"]) == ("train-local", 2, 1, True, 0.1)
    summary = wait_for(client, "train-local")
    assert (summary["status"], summary["total_episodes"], summary["completed"], summary["failed"]) == ("completed", 2, 2, 0)
    episodes = client.get("/admin/training/episodes/train-local", headers=AUTH).json()["episodes"]
    assert [e["status"] for e in episodes] == ["approved", "approved"]
    assert episodes[0]["task"]["title"] == "add() returns the wrong result"
    assert [a.decision for a in reversed(audit(client, "training.start"))] == ["allowed"]
    assert [a.decision for a in audit(client, "training.run")] == ["completed"]
    assert len(audit(client, "training.episode")) == 2
    assert git(repo, "branch", "--list", "aura-sicd/*").strip() == ""  # a dry run keeps no branch
    metrics = client.get("/metrics").text
    assert 'aura_iterations_total{status="approved"} 2.0' in metrics
    assert 'aura_runs{kind="training",status="completed"} 1.0' in metrics
    assert start(client, run_id="train-local", task_description="again", path=str(repo)).status_code == 409


@pytest.mark.bwrap
def test_a_training_run_on_an_installed_repository_goes_through_its_mirror(client, github, ollama, http, tmp_path):
    origin = make_repo(tmp_path / "origin", FILES)
    bare = tmp_path / "git" / "acme" / "calc.git"  # where AURA_GITHUB_GIT_URL (make_settings) points git
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(bare))
    github.installations["acme/calc"] = 77
    repo_route = http.get("https://api.github.com/repos/acme/calc").mock(
        return_value=httpx.Response(200, json={"full_name": "acme/calc", "clone_url": str(bare), "default_branch": "main"}))
    ollama.queue("generator", RIGHT)
    ollama.queue("discriminator", GOOD)
    answer = start(client, run_id="train-gh", task_description="add() is wrong", repo="acme/calc", files=["calc.py"])
    assert answer.status_code == 202 and answer.json()["repo"] == "acme/calc"
    summary = wait_for(client, "train-gh")
    assert (summary["status"], summary["completed"], summary["repo"]) == ("completed", 1, "acme/calc")
    [episode] = client.get("/admin/training/episodes/train-gh", headers=AUTH).json()["episodes"]
    assert episode["task"]["files"] == ["calc.py"] and episode["status"] == "approved"
    assert repo_route.called and "/app/installations/77/access_tokens" in github.paths("POST")
    settings = client.app.state.runtime.settings
    assert (settings.data_dir / "mirrors" / "acme" / "calc.git").is_dir()
    assert not any((settings.data_dir / "worktrees" / "acme__calc").iterdir())  # the checkout is removed


def test_a_repository_the_app_is_not_installed_on_is_refused_before_anything_runs(client, github):
    answer = start(client, task_description="x", repo="acme/other")
    assert answer.status_code == 404 and "not installed on acme/other" in answer.json()["detail"]
    assert client.app.state.runtime.store.list_runs() == []


def test_a_run_that_cannot_reach_the_model_server_is_marked_failed(http, github, tmp_path):
    repo = make_repo(tmp_path / "calc", FILES)
    http.route(host="ollama-down.test").mock(side_effect=httpx.ConnectError("connection refused"))
    with make_client(make_settings(tmp_path, ollama_host="http://ollama-down.test"), InMemoryJobQueue()) as client:
        assert start(client, run_id="train-down", task_description="Fix add", path=str(repo)).status_code == 202
        assert wait_for(client, "train-down")["status"] == "failed"
        [entry] = audit(client, "training.run")
    assert entry.decision == "failed" and "ollama-down.test" in entry.details["error"], entry.details
