"""The store against real SQLite files (and Postgres when AURA_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from bot.records import (
    AgitatorGuidance,
    Change,
    ChangeType,
    Edit,
    Episode,
    EpisodeMetrics,
    EpisodeStatus,
    GuidanceEntry,
    IterationRecord,
    IterationStatus,
    LLMCall,
    PolicyDecision,
    Proposal,
    Reward,
    Rubric,
    Task,
    Verdict,
)
from bot.store import Store, StoreError, export_episodes
from bot.store.engine import current_revision, head_revision, migrate
from bot.store.tables import Base, EpisodeRow, IterationRow
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts
from tests import builders

TABLES = {"runs", "episodes", "iterations", "guidance", "audit"}
T0 = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


# --- records ---------------------------------------------------------------------------------------


def iteration(run_id: str, episode_id: str, number: int, candidate: int = 0, *, reward: float = 0.5) -> IterationRecord:
    """An iteration with every field set, so that a round trip through the store checks them all."""
    started = T0 + timedelta(minutes=number, seconds=candidate)
    approved = reward >= 0.8
    return builders.iteration(
        run_id,
        episode_id,
        number,
        candidate=candidate,
        proposal_id="0123456789ab",
        status=IterationStatus.APPROVED if approved else IterationStatus.REJECTED,
        at=started,
        finished_at=started + timedelta(seconds=42),
        model="qwen2.5-coder:7b",
        temperature=0.2,
        guidance_in=[
            GuidanceEntry(source="agitator", text="handle the empty list", iteration=number - 1, created_at=T0),
            GuidanceEntry(source="review", text="no print()", path="src/app.py", line=7, author="ana", created_at=T0),
        ],
        prop=Proposal(
            summary="Fix the off-by-one in paginate()",
            changes=[
                Change(
                    file_path="src/app.py",
                    change_type=ChangeType.UPDATE,
                    edits=[Edit(search="range(n)", replace="range(n + 1)")],
                    rationale="the last page was dropped",
                ),
                Change(file_path="tests/test_app.py", change_type=ChangeType.CREATE, new_content="def test(): ...\n"),
                Change(file_path="old.py", change_type=ChangeType.DELETE),
            ],
        ),
        policy=PolicyDecision(allowed=True, risk_score=0.2, files_changed=3, lines_added=5, lines_removed=1),
        diff="--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-range(n)\n+range(n + 1)\n",
        check_report=CheckReport(
            backend="docker",
            checks=[
                CheckResult(
                    name="pytest",
                    command=["python", "-m", "pytest", "-q"],
                    status=CheckStatus.FAILED,
                    exit_code=1,
                    duration_s=3.25,
                    output="1 failed, 9 passed",
                    tests=TestCounts(passed=9, failed=1),
                    failing_tests=[FailingTest(test_id="tests/test_app.py::test_last", message="assert 3 == 4")],
                ),
                CheckResult(name="ruff", command=["ruff", "check", "."], status=CheckStatus.PASSED, required=False),
            ],
            pass_rate=0.9,
            pass_rate_reason="9 of 10 tests passed",
            duration_s=4.5,
        ),
        rubric=Rubric(coverage=0.8, accuracy=0.7, coherence=0.9, formatting=1.0, issues=["edge case"], comments=["ok"]),
        reward=Reward(
            value=reward,
            pass_rate=0.9,
            rubric_score=0.85,
            verdict=Verdict.APPROVED if approved else Verdict.REJECTED,
            reasons=["one test fails"],
        ),
        guidance_out=AgitatorGuidance(guidance="cover n == 0", focus_points=["empty input"], improvement_plan=["a", "b"]),
        llm_calls=[
            LLMCall(role="generator", model="qwen2.5-coder:7b", prompt_tokens=1200, completion_tokens=300, duration_ms=9000.5),
            LLMCall(role="discriminator", model="qwen2.5:7b", prompt_tokens=800, completion_tokens=100, repaired=True),
            LLMCall(role="agitator", model="qwen2.5:7b", ok=False, error="timeout", attempts=3),
        ],
        harness_ms=12.5,
    )


def episode(
    run_id: str, episode_id: str, number: int = 1, *, status: EpisodeStatus = EpisodeStatus.EXHAUSTED, iterations: int = 2
) -> Episode:
    """An episode with every field set; `iterations` of the iterations above."""
    return builders.episode(
        run_id,
        episode_id,
        Task(title="Pagination drops the last page", body="See #12", files=["src/app.py"], source="github:o/r#12", repo="o/r"),
        [iteration(run_id, episode_id, n) for n in range(1, iterations + 1)],
        status=status,
        number=number,
        at=T0,
        context={"base_sha": "abc123", "branch": "aura-sicd/0123456789ab", "proposal_id": "0123456789ab", "max_iterations": 5},
        actions=[{"step": "generate", "iteration": n} for n in range(1, iterations + 1)],
        outcomes={"best_iteration": 1, "best_reward": 0.5},
        metrics=EpisodeMetrics(
            tokens_used=2400 * iterations,
            inference_time_ms=9000.5,
            changes_proposed=3 * iterations,
            changes_accepted=1,
            llm_calls=3 * iterations,
            error_count=1,
        ),
        metadata={"labels": ["aura-sicd"], "nested": {"a": [1, 2.5, None, True]}},
        finished_at=T0 + timedelta(minutes=10),
    )


# --- fixtures --------------------------------------------------------------------------------------

POSTGRES_URL = os.environ.get("AURA_TEST_POSTGRES_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'aura.db'}"
    assert POSTGRES_URL
    clean = Store(POSTGRES_URL)  # a scratch database: start every test from an empty one
    with clean.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    clean.close()
    return POSTGRES_URL


@pytest.fixture
def store(url: str):
    with Store.open(url) as opened:
        yield opened


def count(store: Store, table: type[Base]) -> int:
    with store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


# --- schema ----------------------------------------------------------------------------------------


def test_open_creates_the_directory_and_every_table(tmp_path):
    db = tmp_path / "not" / "there" / "aura.db"
    with Store.open(f"sqlite:///{db}") as store:
        assert db.exists()
        assert TABLES <= set(inspect(store.engine).get_table_names())
        assert current_revision(store.engine) == head_revision() is not None
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_migrations_match_the_table_models(store: Store):
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_drops_every_table_and_upgrade_restores_them(store: Store):
    store.create_run("r1", kind="cli", repo="o/r")
    migrate(store.engine, "base", downgrade=True)
    assert current_revision(store.engine) is None
    assert not TABLES & set(inspect(store.engine).get_table_names())
    migrate(store.engine, "head")
    assert TABLES <= set(inspect(store.engine).get_table_names())
    assert store.get_run("r1") is None


def test_reopening_an_up_to_date_database_keeps_the_data(url: str):
    with Store.open(url) as first:
        first.create_run("r1", kind="eval", repo="o/r")
    with Store.open(url) as second:
        assert second.get_run("r1") is not None


def test_a_database_from_a_newer_version_is_refused_clearly(url: str):
    with Store.open(url) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="newer aura-sicd"):
        Store.open(url)


def test_unusable_databases_are_clear_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the database directory"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'aura.db'}")
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://user@localhost/aura")
    with pytest.raises(StoreError, match="cannot parse the database URL"):
        Store.open("not a url")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store.open("postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the database.*not a database"):
        Store.open(f"sqlite:///{garbage}")


def test_plain_postgresql_urls_use_psycopg_3():
    store = Store("postgresql://user:secret@db.example/aura")
    assert store.url.drivername == "postgresql+psycopg"
    store.close()


# --- runs ------------------------------------------------------------------------------------------


def test_runs_are_created_once_and_finished(store: Store):
    store.create_run("r1", kind="training", repo="o/r", params={"episodes": 10, "when": T0})
    store.create_run("r1", kind="cli", repo="other/repo")  # idempotent: the first one stays
    run = store.get_run("r1")
    assert run is not None
    assert (run.kind, run.repo, run.status, run.finished_at) == ("training", "o/r", "running", None)
    assert run.params == {"episodes": 10, "when": "2026-11-01T12:00:00.123456Z"}
    assert run.created_at.tzinfo is not None and run.created_at.utcoffset() == timedelta(0)

    store.finish_run("r1", "completed")
    finished = store.get_run("r1")
    assert finished is not None and finished.status == "completed"
    assert finished.finished_at is not None and finished.finished_at >= finished.created_at

    assert store.get_run("nope") is None
    with pytest.raises(StoreError, match="unknown run 'nope'"):
        store.finish_run("nope", "failed")
    with pytest.raises(StoreError, match="unknown run kind 'batch'"):
        store.create_run("r2", kind="batch", repo="o/r")


def test_list_runs_newest_first_and_by_repo(store: Store):
    for run_id, repo in [("a", "o/one"), ("b", "o/two"), ("c", "o/one")]:
        store.create_run(run_id, kind="cli", repo=repo)
    assert [r.run_id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.run_id for r in store.list_runs(repo="o/one")] == ["c", "a"]
    assert [r.run_id for r in store.list_runs(limit=1)] == ["c"]


# --- episodes and iterations -----------------------------------------------------------------------


def test_a_full_episode_round_trips_through_the_store(store: Store):
    original = episode("run-1", "ep-a", iterations=3)
    original.iterations.append(iteration("run-1", "ep-a", 3, candidate=1, reward=0.9))
    store.create_run("run-1", kind="cli", repo="o/r")
    store.save_episode(original)

    loaded = store.get_episode("run-1", "ep-a")
    assert loaded == original
    assert loaded.started_at.tzinfo is not None
    assert loaded.iterations[0].check_report.checks[0].failing_tests[0].test_id == "tests/test_app.py::test_last"
    assert store.list_episodes("run-1") == [original]
    assert store.get_episode("run-1", "missing") is None
    assert store.get_episode("other-run", "ep-a") is None


def test_iterations_come_back_ordered_whatever_the_save_order(store: Store):
    store.create_run("r", kind="cli", repo="o/r")
    store.save_episode(episode("r", "e", iterations=0))
    for number, candidate in [(2, 1), (1, 0), (2, 0), (3, 0)]:
        store.save_iteration(iteration("r", "e", number, candidate))
    loaded = store.get_episode("r", "e")
    assert [(i.number, i.candidate) for i in loaded.iterations] == [(1, 0), (2, 0), (2, 1), (3, 0)]


def test_the_episode_json_does_not_duplicate_iterations_or_metrics(store: Store):
    store.create_run("r", kind="cli", repo="o/r")
    store.save_episode(episode("r", "e", iterations=2))
    with store.engine.connect() as connection:
        data = connection.scalar(select(EpisodeRow.data))
        row = connection.execute(select(EpisodeRow.tokens_used, EpisodeRow.actions_count)).one()
    assert set(data) == {"task", "context", "actions", "outcomes", "metadata"}
    assert tuple(row) == (4800, 2)
    assert count(store, IterationRow) == 2


# what the code before the typed EpisodeContext/EpisodeOutcome stored: dicts by string key, the branch and
# proposal id in the outcomes too, a null evidence; and an older shape's keys that are no longer read
LEGACY_DATA = {
    "approved": ({"repo": "o/r", "base_sha": "abc123", "branch": "aura-sicd/0123456789ab", "proposal_id": "0123456789ab",
                  "max_iterations": 5, "candidates": [{"model": "qwen2.5-coder:7b", "temperature": 0.2}], "dry_run": False,
                  "baseline": {"failing_tests": ["tests/test_app.py::test_last_page"], "red_checks": ["tests"], "tests_run": 12}},
                 {"best_iteration": 2, "best_candidate": 0, "best_reward": 0.91, "best_diff": "--- a/src/app.py\n",
                  "branch": "aura-sicd/0123456789ab", "proposal_id": "0123456789ab", "commit": "f" * 40}),
    "no_change": ({"base_commit": "abc123", "branch": "aura-sicd/0123456789ab", "settings": {"max_iterations": 5}},
                  {"summary": "already paginated", "evidence": None}),
}


@pytest.mark.parametrize("shape", sorted(LEGACY_DATA))
def test_an_episode_stored_with_dict_context_and_outcomes_still_loads(store: Store, shape: str):
    store.create_run("r", kind="cli", repo="o/r")
    store.save_episode(episode("r", "e", iterations=2))
    context, outcomes = LEGACY_DATA[shape]
    with store.engine.begin() as connection:
        data = dict(connection.scalar(select(EpisodeRow.data)))
        connection.execute(EpisodeRow.__table__.update().values(data={**data, "context": context, "outcomes": outcomes}))

    loaded = store.get_episode("r", "e")

    assert loaded.context.branch == "aura-sicd/0123456789ab"
    if shape == "approved":
        assert loaded.context.baseline.failing_tests == ["tests/test_app.py::test_last_page"]
        assert loaded.context.candidates[0].model == "qwen2.5-coder:7b" and loaded.context.max_iterations == 5
        assert (loaded.outcomes.commit, loaded.outcomes.best_reward) == ("f" * 40, 0.91)
        assert loaded.chosen_iteration() is loaded.iterations[1]
    else:
        assert (loaded.outcomes.summary, loaded.outcomes.evidence, loaded.outcomes.commit) == ("already paginated", "", None)
        assert loaded.chosen_iteration() is None
    store.save_episode(loaded)  # saved again in the typed shape, it loads the same
    assert store.get_episode("r", "e") == loaded


def test_saving_again_updates_in_place(store: Store):
    store.create_run("r", kind="cli", repo="o/r")
    ep = episode("r", "e", status=EpisodeStatus.RUNNING, iterations=1)
    store.save_episode(ep)  # at start
    store.save_iteration(ep.iterations[0])
    ep.iterations.append(iteration("r", "e", 2))
    store.save_iteration(ep.iterations[1])
    store.save_episode(ep)  # after an iteration
    ep.iterations[1] = iteration("r", "e", 2, reward=0.95)
    ep.status = EpisodeStatus.APPROVED
    ep.metrics.tokens_used = 9999
    store.save_iteration(ep.iterations[1])
    store.save_episode(ep)  # at the end

    assert count(store, EpisodeRow) == 1
    assert count(store, IterationRow) == 2
    assert store.get_episode("r", "e") == ep
    assert store.list_episode_summaries("r")[0].best_reward == 0.95


def test_save_episode_adds_missing_iterations_and_leaves_stored_ones_to_save_iteration(store: Store):
    store.create_run("r", kind="cli", repo="o/r")
    ep = episode("r", "e", iterations=1)
    store.save_episode(ep)
    ep.iterations[0].error = "changed in memory only"
    ep.iterations.append(iteration("r", "e", 2))
    store.save_episode(ep)
    loaded = store.get_episode("r", "e")
    assert [i.number for i in loaded.iterations] == [1, 2]
    assert loaded.iterations[0].error is None
    store.save_iteration(ep.iterations[0])
    assert store.get_episode("r", "e").iterations[0].error == "changed in memory only"


def test_saving_needs_the_run_and_the_episode_first(store: Store):
    with pytest.raises(StoreError, match="call create_run"):
        store.save_episode(episode("ghost", "e"))
    store.create_run("r", kind="cli", repo="o/r")
    with pytest.raises(StoreError, match="save the episode before its iterations"):
        store.save_iteration(iteration("r", "e", 1))
    assert count(store, EpisodeRow) == 0


def test_two_episodes_cannot_share_a_number_in_a_run(store: Store):
    store.create_run("r", kind="training", repo="o/r")
    store.save_episode(episode("r", "e1", number=1))
    with pytest.raises(StoreError, match="episode number 1"):
        store.save_episode(episode("r", "e2", number=1))
    assert count(store, IterationRow) == 2  # the failed save left nothing behind


def test_repo_falls_back_to_the_run_when_the_task_has_none(store: Store):
    store.create_run("r", kind="cli", repo="local-checkout")
    ep = episode("r", "e", iterations=1)
    ep.task.repo = ""
    store.save_episode(ep)
    assert len(store.list_iterations(repo="local-checkout")) == 1


def test_list_iterations_by_repo_and_run_newest_first(store: Store):
    store.create_run("r1", kind="cli", repo="o/r")
    store.create_run("r2", kind="cli", repo="o/other")
    store.save_episode(episode("r1", "e1", iterations=3))
    other = episode("r2", "e2", iterations=1)
    other.task.repo = "o/other"
    store.save_episode(other)

    mine = store.list_iterations(repo="o/r")
    assert [(i.run_id, i.number) for i in mine] == [("r1", 3), ("r1", 2), ("r1", 1)]
    assert [i.run_id for i in store.list_iterations(run_id="r2")] == ["r2"]
    assert len(store.list_iterations()) == 4
    assert [i.number for i in store.list_iterations(repo="o/r", limit=2)] == [3, 2]
    assert store.list_iterations(repo="o/r", run_id="r2") == []


def test_run_summary_counts_a_mix_of_statuses(store: Store):
    store.create_run("r", kind="training", repo="o/r")
    statuses = [
        EpisodeStatus.APPROVED,
        EpisodeStatus.APPROVED,
        EpisodeStatus.EXHAUSTED,
        EpisodeStatus.NO_CHANGE,
        EpisodeStatus.ERROR,
        EpisodeStatus.RUNNING,
    ]
    for number, status in enumerate(statuses, start=1):
        store.save_episode(episode("r", f"e{number}", number, status=status, iterations=number % 3))
    store.create_run("noise", kind="training", repo="o/r")
    store.save_episode(episode("noise", "x", iterations=2))

    summary = store.run_summary("r")
    assert (summary.total_episodes, summary.completed, summary.failed, summary.in_progress) == (6, 4, 1, 1)
    assert summary.by_status == {"approved": 2, "exhausted": 1, "no_change": 1, "error": 1, "running": 1}
    iterations = [n % 3 for n in range(1, 7)]  # tokens, changes and actions scale with iterations
    assert summary.total_tokens_used == 2400 * sum(iterations)
    assert summary.total_changes_proposed == 3 * sum(iterations)
    assert summary.total_changes_accepted == 6
    assert summary.total_actions == sum(iterations)

    store.create_run("empty", kind="eval", repo="o/r")
    assert store.run_summary("empty").total_episodes == 0
    with pytest.raises(StoreError, match="unknown run"):
        store.run_summary("nope")


def test_episode_summaries(store: Store):
    store.create_run("r", kind="cli", repo="o/r")
    store.save_episode(episode("r", "e2", 2, iterations=0, status=EpisodeStatus.RUNNING))
    ep = episode("r", "e1", 1, iterations=2)
    ep.iterations[1] = iteration("r", "e1", 2, reward=0.75)
    store.save_episode(ep)
    first, second = store.list_episode_summaries("r")
    assert (first.episode_id, first.iterations, first.best_reward, first.tokens_used) == ("e1", 2, 0.75, 4800)
    assert (second.episode_id, second.iterations, second.best_reward, second.status) == ("e2", 0, None, "running")


# --- export ----------------------------------------------------------------------------------------


def test_export_writes_the_seed_files_that_load_back_equal(store: Store, tmp_path):
    store.create_run("run-7", kind="training", repo="o/r")
    episodes = [episode("run-7", f"e{n}", n, iterations=n) for n in (1, 2, 12)]
    for ep in episodes:
        store.save_episode(ep)

    paths = export_episodes(store, "run-7", tmp_path / "out")
    assert [p.name for p in paths] == ["run-7_ep0001.json", "run-7_ep0002.json", "run-7_ep0012.json"]
    for path, ep in zip(paths, episodes, strict=True):
        raw = path.read_text()
        assert raw.startswith("{\n  ")  # pretty-printed
        assert Episode.model_validate_json(raw) == ep
        assert len(json.loads(raw)["iterations"]) == ep.episode_number


def test_export_of_an_unknown_run_is_a_clear_error(store: Store, tmp_path):
    with pytest.raises(StoreError, match="unknown run 'nope'"):
        export_episodes(store, "nope", tmp_path)


def test_export_file_names_are_safe_for_any_run_id(store: Store, tmp_path):
    store.create_run("gh/o/r#12 retry", kind="github", repo="o/r")
    store.save_episode(episode("gh/o/r#12 retry", "e"))
    [path] = export_episodes(store, "gh/o/r#12 retry", tmp_path)
    assert path.parent == tmp_path and path.name == "gh_o_r_12_retry_ep0001.json"


# --- guidance --------------------------------------------------------------------------------------


def test_guidance_by_repo_path_and_episode_and_forgetting(store: Store):
    def add(repo: str, text_: str, path: str | None, minutes: int, episode_id: str | None = None) -> int:
        entry = GuidanceEntry(source="review", text=text_, path=path, author="ana", created_at=T0 + timedelta(minutes=minutes))
        return store.add_guidance(repo, entry, run_id="r", episode_id=episode_id)

    first = add("o/r", "use pathlib", "src/app.py", 1, "e1")
    add("o/r", "no globals", None, 2, "e1")
    latest = add("o/r", "type hints please", "src/app.py", 3, "e2")
    add("o/other", "unrelated", "src/app.py", 4)

    all_mine = store.list_guidance("o/r")
    assert [g.text for g in all_mine] == ["type hints please", "no globals", "use pathlib"]
    assert [g.id for g in store.list_guidance("o/r", path="src/app.py")] == [latest, first]
    assert [g.text for g in store.list_guidance("o/r", episode_id="e1")] == ["no globals", "use pathlib"]
    assert len(store.list_guidance("o/r", limit=1)) == 1
    stored = store.list_guidance("o/r", path="src/app.py")[-1]
    assert (stored.repo, stored.run_id, stored.episode_id, stored.author) == ("o/r", "r", "e1", "ana")
    assert stored.created_at == T0 + timedelta(minutes=1)

    assert store.forget_guidance(first, repo="o/other") is False  # another repository's entry stays
    assert store.forget_guidance(first) is True
    assert store.forget_guidance(first) is False
    assert [g.text for g in store.list_guidance("o/r", path="src/app.py")] == ["type hints please"]


# --- audit -----------------------------------------------------------------------------------------


def test_audit_entries_listed_newest_first_and_filtered(store: Store):
    first = store.audit(
        actor="policy",
        action="proposal.evaluate",
        subject="0123456789ab#1.0",
        decision="denied",
        risk_score=0.9,
        details={"violations": [".github/workflows/ci.yml"], "at": T0},
        run_id="r1",
    )
    second = store.audit(actor="discriminator", action="proposal.approve", subject="0123456789ab#2.0", decision="approved", run_id="r1")
    store.audit(actor="admin", action="training.start", subject="o/r", decision="allowed")

    assert [e.id for e in store.list_audit(run_id="r1")] == [second, first]
    [denied] = store.list_audit(action="proposal.evaluate")
    assert (denied.actor, denied.decision, denied.risk_score) == ("policy", "denied", 0.9)
    assert denied.details == {"violations": [".github/workflows/ci.yml"], "at": "2026-11-01T12:00:00.123456Z"}
    assert denied.created_at.tzinfo is not None
    assert len(store.list_audit()) == 3
    assert len(store.list_audit(limit=2)) == 2


# --- concurrency -----------------------------------------------------------------------------------


def test_two_stores_on_one_database_with_concurrent_writers_lose_nothing(url: str):
    with Store.open(url) as setup:
        setup.create_run("r", kind="training", repo="o/r")
    stores = [Store.open(url), Store.open(url)]
    writers, per_writer = 4, 15
    errors: list[BaseException] = []

    def work(index: int) -> None:
        store = stores[index % 2]
        try:
            for n in range(per_writer):
                number = index * per_writer + n + 1
                ep = episode("r", f"w{index}-{n}", number, iterations=0, status=EpisodeStatus.RUNNING)
                store.save_episode(ep)
                store.save_iteration(iteration("r", ep.episode_id, 1))
                ep.status = EpisodeStatus.APPROVED
                store.save_episode(ep)
                store.audit(actor=f"writer-{index}", action="write", subject=str(n), decision="ok", run_id="r")
                store.add_guidance("o/r", GuidanceEntry(source="agitator", text=f"{index}-{n}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        total = writers * per_writer
        summary = stores[0].run_summary("r")
        assert (summary.total_episodes, summary.completed) == (total, total)
        assert len(stores[1].list_iterations(run_id="r")) == total
        assert len(stores[0].list_audit(run_id="r", limit=1000)) == total
        assert len(stores[1].list_guidance("o/r", limit=1000)) == total
    finally:
        for store in stores:
            store.close()


def test_concurrent_first_opens_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(Store.open(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with opened[0].engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    for store in opened:
        store.close()
