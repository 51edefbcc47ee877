from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import inspect

from bot.store import Store
from bot.store.engine import current_revision, migrate
from bot.store.github import BotPullRequest, DeliveryRecord, DeliveryUpdate, GitHubStore, HumanFeedback
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":  # a database of its own on AURA_TEST_POSTGRES_URL's server
            url = stack.enter_context(fresh_database("aura_gh"))
        else:
            url = f"sqlite:///{tmp_path / 'aura.db'}"
        with Store.open(url) as opened:
            yield GitHubStore(opened)


GITHUB_TABLES = {"github_deliveries", "github_installations", "github_installation_repositories",
                 "bot_pull_requests", "human_feedback"}


def test_migration_0002_creates_and_drops_the_github_tables(store):
    engine = store.store.engine
    assert GITHUB_TABLES <= set(inspect(engine).get_table_names())
    migrate(engine, "0001", downgrade=True)
    assert current_revision(engine) == "0001"
    assert not GITHUB_TABLES & set(inspect(engine).get_table_names())
    migrate(engine)
    assert GITHUB_TABLES <= set(inspect(engine).get_table_names())


def test_deliveries_are_recorded_once_and_pending_ones_found(store):
    a = DeliveryRecord(delivery_id="a", event="issues", action="labeled", repo="o/r", job={"kind": "issue"})
    b = DeliveryRecord(delivery_id="b", event="ping", status="ignored")
    assert store.write_deliveries([a, a, b]) == [True, False, True]
    assert [d.delivery_id for d in store.pending_admissions()] == ["a"]
    store.write_deliveries([DeliveryUpdate(delivery_id="a", status="failed", detail="GitHub down", keep_job=True)])
    assert [d.delivery_id for d in store.pending_admissions()] == ["a"]  # tried again on the next start
    assert store.write_deliveries([DeliveryUpdate(delivery_id="a", status="enqueued"),
                                   DeliveryUpdate(delivery_id="nobody", status="enqueued")]) == [True, False]
    assert store.pending_admissions() == []
    assert store.get_delivery("a").job is None
    assert [d.delivery_id for d in store.list_deliveries(status="enqueued")] == ["a"]


def test_bot_prs_by_number_and_branch(store):
    store.upsert_bot_pr(BotPullRequest(repo="o/r", number=3, branch="aura-sicd/x", proposal_id="p1", run_id="r1"))
    store.upsert_bot_pr(BotPullRequest(repo="o/r", number=3, branch="aura-sicd/x", proposal_id="p2", run_id="r1",
                                       html_url="https://github.com/o/r/pull/3"))
    store.upsert_bot_pr(BotPullRequest(repo="o/r", number=9, branch="aura-sicd/x", state="open"))
    assert store.get_bot_pr_by_number("o/r", 3).proposal_id == "p2"
    assert store.get_bot_pr_by_branch("o/r", "aura-sicd/x").number == 9  # the newest PR of the branch
    assert store.get_bot_pr_by_branch("o/r", "aura-sicd/none") is None
    assert store.set_bot_pr_state("o/r", 3, "closed")
    assert store.get_bot_pr_by_number("o/r", 3).state == "closed"
    assert not store.set_bot_pr_state("o/r", 4, "closed")


def test_feedback_for_an_unknown_pr_is_still_kept(store):
    assert store.record_feedback(HumanFeedback(delivery_id="d", repo="o/r", number=44, merged=False, branch="aura-sicd/y"))
    [fb] = store.list_feedback()
    assert (fb.number, fb.positive, fb.branch) == (44, False, "aura-sicd/y")
