"""The pattern library (lexical and embedding similarity, JSONL round trip) and retention with opt-out."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import respx
from sqlalchemy import update

from bot.learning.export import export_training_data
from bot.learning.patterns import (
    OllamaEmbedder,
    PatternRecord,
    add_pattern,
    export_patterns,
    import_patterns,
    pattern_examples,
    record_pattern,
    similar_patterns,
)
from bot.learning.retention import apply_retention, opt_in, opt_out
from bot.records import EpisodeStatus, GuidanceEntry, Task, utcnow
from bot.store import StoreError
from bot.store.tables import PatternRow, RunRow
from tests.builders import T0, generator_messages, iteration, proposal, save_episode

REPO = "acme/shop"
HOST = "http://ollama.test"


def pattern(title: str, *, repo: str = REPO, reward: float = 0.9, files=("src/cart.py",), at=T0) -> PatternRecord:
    return PatternRecord(repo=repo, task_title=title, files=list(files), summary=f"fix: {title}",
                         diff=f"--- a/{files[0]}\n+++ b/{files[0]}\n+# {title}\n", reward=reward, created_at=at)


def approved_episode(store, run_id="r1", title="Discount codes are case-sensitive"):
    task = Task(title=title, repo=REPO)
    prop = proposal("src/cart.py", "code == CODE", "code.upper() == CODE", summary="Compare codes upper-cased")
    return save_episode(store, run_id, f"{run_id}-e", task, [
        iteration(run_id, f"{run_id}-e", 1, reward=0.3, prop=proposal("src/cart.py", "a", "b")),
        iteration(run_id, f"{run_id}-e", 2, reward=0.9, prop=prop),
    ], status=EpisodeStatus.APPROVED)


def test_an_approved_episode_becomes_a_pattern_once(store):
    episode = approved_episode(store)
    first = record_pattern(store, episode)
    assert first is not None and record_pattern(store, episode) == first
    (kept,) = store.list_patterns(repo=REPO)
    assert (kept.task_title, kept.summary, kept.files, kept.reward) == (
        "Discount codes are case-sensitive", "Compare codes upper-cased", ["src/cart.py"], 0.9)
    assert kept.diff == episode.iterations[1].diff
    exhausted = episode.model_copy(update={"status": EpisodeStatus.EXHAUSTED, "episode_id": "other"})
    assert record_pattern(store, exhausted) is None


async def test_lexical_similarity_picks_the_closest_task_of_the_same_repository(store):
    add_pattern(store, pattern("Discount codes are case-sensitive"))
    add_pattern(store, pattern("Shipping cost ignores the weight", files=("src/shipping.py",)))
    add_pattern(store, pattern("Discount codes expire a day early", repo="other/repo"))

    task = Task(title="Discount codes in lower case are refused", repo=REPO)
    hits = await similar_patterns(store, REPO, task, limit=5)
    assert [h.pattern.task_title for h in hits] == ["Discount codes are case-sensitive"]
    assert hits[0].method == "lexical"

    (example,) = await pattern_examples(store, REPO, task, limit=2)
    assert example.source == "memory" and example.path == "src/cart.py"
    assert "Task: Discount codes are case-sensitive" in example.text and "+# Discount codes" in example.text


async def test_embedding_similarity_when_an_embedding_model_is_configured(store):
    add_pattern(store, pattern("Totals are off by a cent"))
    add_pattern(store, pattern("Discount codes are case-sensitive"))
    vectors = {  # the fake server's embeddings: the new task lies next to the rounding pattern
        "Totals are off by a cent": [1.0, 0.0], "Discount codes are case-sensitive": [0.0, 1.0],
        "Prices show 9.989999 instead of 9.99": [0.9, 0.1],
    }
    requests = []

    def embed(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        return httpx.Response(200, json={"model": body["model"], "embeddings": [vectors[t] for t in body["input"]]})

    with respx.mock(base_url=HOST) as router:
        router.post("/api/embed").mock(side_effect=embed)
        embedder = OllamaEmbedder(HOST, "nomic-embed-text")
        task = Task(title="Prices show 9.989999 instead of 9.99", repo=REPO)
        hits = await similar_patterns(store, REPO, task, limit=1, embedder=embedder)
        assert [(h.pattern.task_title, h.method) for h in hits] == [("Totals are off by a cent", "embedding")]
        assert len(requests[0]["input"]) == 3  # the task and both patterns, embedded once
        await similar_patterns(store, REPO, task, limit=1, embedder=embedder)
        assert requests[1]["input"] == ["Prices show 9.989999 instead of 9.99"]  # pattern vectors were kept


async def test_a_failing_embedding_server_falls_back_to_lexical(store):
    add_pattern(store, pattern("Discount codes are case-sensitive"))
    with respx.mock(base_url=HOST) as router:
        router.post("/api/embed").mock(return_value=httpx.Response(404, json={"error": 'model "x" not found'}))
        hits = await similar_patterns(store, REPO, Task(title="discount codes", repo=REPO), embedder=OllamaEmbedder(HOST, "x"))
    assert [h.method for h in hits] == ["lexical"]


def test_jsonl_export_and_import_round_trip(store, tmp_path):
    add_pattern(store, pattern("Discount codes are case-sensitive"))
    add_pattern(store, pattern("Shipping cost ignores the weight", reward=0.8, at=T0 + timedelta(days=1)))
    out = tmp_path / "patterns.jsonl"
    assert export_patterns(store, out) == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["task_title"] for line in lines] == ["Discount codes are case-sensitive", "Shipping cost ignores the weight"]

    assert import_patterns(store, out, repo="acme/fork") == (2, 0)
    assert sorted(p.task_title for p in store.list_patterns(repo="acme/fork")) == sorted(line["task_title"] for line in lines)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text() + '{"repo": "x", "task_title": "t", "diff": "d", "reward": 7}\n')
    with pytest.raises(StoreError, match=r"bad.jsonl:3: not a pattern record"):
        import_patterns(store, bad)
    assert len(store.list_patterns()) == 4  # nothing of the bad file was written


def test_opt_out_deletes_patterns_refuses_new_ones_and_can_be_undone(store, tmp_path):
    add_pattern(store, pattern("Discount codes are case-sensitive"))
    assert opt_out(store, REPO, reason="customer code", actor="maria") == 1
    assert store.is_opted_out(REPO) and store.list_patterns(repo=REPO) == []
    assert add_pattern(store, pattern("Another")) is None
    assert record_pattern(store, approved_episode(store)) is None
    out = tmp_path / "p.jsonl"
    out.write_text(pattern("Imported").model_dump_json() + "\n")
    assert import_patterns(store, out) == (0, 1)
    assert opt_in(store, REPO) is True and opt_in(store, REPO) is False
    assert add_pattern(store, pattern("Another")) is not None
    assert [a.action for a in store.list_audit()][:3] == ["learning.opt_in", "learning.opt_in", "learning.opt_out"]


def test_retention_deletes_old_rows_and_the_patterns_of_opted_out_repositories(store, tmp_path):
    now = utcnow()
    old, recent = now - timedelta(days=60), now - timedelta(days=2)
    for run_id, title, at in (("old-run", "old", old), ("new-run", "new", recent)):
        task = Task(title=title, repo=REPO)
        save_episode(store, run_id, f"{run_id}-e", task, [iteration(run_id, f"{run_id}-e", 1, reward=0.9, at=at,
                     prop=proposal("a.py", "a", title), messages=generator_messages(task, "", []))],
                     status=EpisodeStatus.APPROVED, at=at)
    with store.engine.begin() as connection:  # a run's age is its creation time, which create_run stamps "now"
        connection.execute(update(RunRow).where(RunRow.run_id == "old-run").values(created_at=old))
    store.add_guidance(REPO, GuidanceEntry(source="human", text="old advice", created_at=old))
    store.add_guidance(REPO, GuidanceEntry(source="human", text="new advice", created_at=recent))
    add_pattern(store, pattern("old pattern", at=old))
    add_pattern(store, pattern("new pattern", at=recent))
    opt_out(store, "acme/private")
    with store.engine.begin() as connection:  # a pattern written behind the opt-out's back (another process)
        connection.execute(PatternRow.__table__.insert().values(
            repo="acme/private", task_title="raw", task_body="", files={"paths": []}, summary="", diff="d",
            reward=0.5, created_at=recent))

    result = apply_retention(store, 30)

    assert (result.runs, result.episodes, result.iterations) == (1, 1, 1)
    assert store.get_run("old-run") is None and store.get_run("new-run") is not None
    assert store.list_iterations(run_id="old-run") == [] and len(store.list_iterations(run_id="new-run")) == 1
    assert [g.text for g in store.list_guidance(REPO)] == ["new advice"] and result.guidance == 1
    assert [p.task_title for p in store.list_patterns()] == ["new pattern"]
    assert (result.patterns, result.opted_out_patterns) == (1, 1)
    assert store.list_audit(action="learning.retention")[0].details["runs"] == 1
    assert export_training_data(store, tmp_path / "sft.jsonl", "sft").written == 1  # the recent run only
    with pytest.raises(StoreError, match="at least 1 day"):
        apply_retention(store, 0)
