"""The learning commands end to end through `aura-sicd` (bot.cli.main) on a filled store."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.config import Settings
from bot.records import EpisodeStatus, GuidanceEntry, Rubric, Task
from bot.store import Store
from tests.builders import generator_messages, iteration, proposal, save_episode

REPO = "acme/shop"


@pytest.fixture
def filled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AURA_DATA_DIR", str(tmp_path / "data"))
    store = Store.open(Settings(_env_file=None).database_url)
    task = Task(title="Discount codes are case-sensitive", repo=REPO)
    messages = generator_messages(task, "", [])
    rubric = Rubric(coverage=0.5, accuracy=0.5, coherence=0.5, formatting=0.5, issues=["Missing test"])
    for run_id, rewards in (("r1", [0.3, 0.5]), ("r2", [0.6, 0.9])):
        save_episode(store, run_id, f"{run_id}-e", task, [
            iteration(run_id, f"{run_id}-e", i + 1, reward=r, rubric=rubric, messages=messages,
                      prop=proposal("src/cart.py", "a", f"{run_id}{i}")) for i, r in enumerate(rewards)
        ], status=EpisodeStatus.APPROVED if rewards[-1] >= 0.75 else EpisodeStatus.EXHAUSTED)
    guidance_id = store.add_guidance(REPO, GuidanceEntry(source="review", text="Use Decimal for money.", path="src/cart.py"))
    yield store, guidance_id, tmp_path
    store.close()


def test_bench_commands(filled, capsys):
    assert main(["bench", "report", "--repo", REPO]) == 0
    out = capsys.readouterr().out
    assert "4 attempts (4 scored, 1 approved)" in out and "reward first → last: 0.300 → 0.900 (delta +0.600)" in out
    assert "4x  Missing test" in out
    assert main(["bench", "compare", "r1", "r2", "--json"]) == 0
    reward = next(m for m in json.loads(capsys.readouterr().out)["metrics"] if m["name"] == "reward")
    assert reward["delta"] == pytest.approx(0.35)
    assert main(["bench", "challenges"]) == 0
    assert "Discount codes are case-sensitive" in capsys.readouterr().out
    assert main(["bench", "compare", "r1", "nope"]) == 2
    assert "unknown run 'nope'" in capsys.readouterr().err


def test_export_and_learning_commands(filled, capsys):
    store, guidance_id, tmp = filled
    assert main(["export", "--format", "sft", "-o", str(tmp / "sft.jsonl")]) == 0
    assert "1 SFT examples written" in capsys.readouterr().out
    assert json.loads((tmp / "sft.jsonl").read_text())["messages"][-1]["role"] == "assistant"
    assert main(["export", "--format", "dpo", "--pairing", "task", "-o", str(tmp / "dpo.jsonl")]) == 0
    assert len((tmp / "dpo.jsonl").read_text().splitlines()) == 3  # 0.9 against 0.3, 0.5 and 0.6

    assert main(["learning", "memory", REPO]) == 0
    assert f"#{guidance_id}" in capsys.readouterr().out
    assert main(["learning", "forget", REPO, str(guidance_id)]) == 0
    assert main(["learning", "forget", REPO, str(guidance_id)]) == 1
    assert f"has no memory entry #{guidance_id}" in capsys.readouterr().err

    (tmp / "p.jsonl").write_text(json.dumps({"repo": REPO, "task_title": "t", "diff": "d", "reward": 0.8}) + "\n")
    assert main(["learning", "import-patterns", str(tmp / "p.jsonl")]) == 0
    assert len(store.list_patterns(repo=REPO)) == 1
    assert main(["learning", "opt-out", REPO, "--reason", "private"]) == 0
    assert "(1 patterns deleted)" in capsys.readouterr().out
    assert main(["export", "--format", "sft", "-o", str(tmp / "none.jsonl")]) == 0
    assert "skipped 4 attempts of opted-out repositories" in capsys.readouterr().out
    assert main(["learning", "retention"]) == 2
    assert "AURA_RETENTION_DAYS" in capsys.readouterr().err
    assert main(["learning", "retention", "--days", "30"]) == 0


def test_eval_command_with_a_bad_suite(filled, capsys):
    assert main(["eval", str(filled[2] / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["eval", "--task", "nope"]) == 2
    assert "no task named nope" in capsys.readouterr().err


def test_memory_shows_a_repeated_text_once_with_how_many_runs_gave_it(filled, capsys):
    store, guidance_id, _ = filled
    lesson = "Compare discount codes case-insensitively."
    ids = [store.add_guidance(REPO, GuidanceEntry(source="review", text=text), run_id=run_id)
           for run_id, text in (("r1", f"  {lesson.upper()} "), ("r2", lesson), ("r2", lesson))]
    assert main(["learning", "memory", REPO]) == 0
    out = capsys.readouterr().out
    assert out.count(lesson) == 1 and lesson.upper() not in out
    assert f"#{ids[2]:<6}" in out and f", from 2 runs (also #{ids[1]} #{ids[0]})" in out
    assert f"#{guidance_id:<6}" in out and "Use Decimal for money." in out  # a single entry, as before
    assert main(["learning", "memory", REPO, "--limit", "1"]) == 0
    assert "Use Decimal" not in capsys.readouterr().out  # the limit counts distinct texts


def test_compare_of_equal_runs_prints_zero_not_negative_zero(filled, capsys):
    store = filled[0]
    task = Task(title="Round totals", repo=REPO)
    # 0.1 + 0.2 is 0.30000000000000004: B - A is a tiny negative number, which used to print as -0.000
    for run_id, reward in (("ra", 0.1 + 0.2), ("rb", 0.3)):
        save_episode(store, run_id, f"{run_id}-e", task, [iteration(run_id, f"{run_id}-e", n, reward=reward) for n in (1, 2)],
                     status=EpisodeStatus.EXHAUSTED)
    assert main(["bench", "compare", "ra", "rb"]) == 0
    out = capsys.readouterr().out
    reward_line = next(line for line in out.splitlines() if line.strip().startswith("reward"))
    assert "+0.000   [+0.000, +0.000]" in reward_line and "-0.000" not in out


def test_export_help_names_the_import_command_that_exists(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "aura-sicd learning import-patterns FILE" in help_text
    with pytest.raises(SystemExit) as named:  # the command it names exists
        main(["learning", "import-patterns", "--help"])
    assert named.value.code == 0 and "usage: aura-sicd learning import-patterns" in capsys.readouterr().out
