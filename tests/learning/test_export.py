"""SFT and DPO export from a store filled with real records; the JSONL is TRL's conversational format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.learning.export import export_training_data
from bot.learning.retention import opt_out
from bot.records import EpisodeStatus, GuidanceEntry, Proposal, Task
from bot.store import StoreError
from bot.store.github import GitHubStore, HumanFeedback
from tests.builders import generator_messages, iteration, proposal, save_episode

REPO = "acme/shop"
TASK = Task(title="Discount codes fail for lower-case input", body="`summer10` is refused.", repo=REPO)
P1 = generator_messages(TASK, "### src/cart.py\n...", [])
P2 = generator_messages(TASK, "### src/cart.py\n...", [GuidanceEntry(source="agitator", text="Compare upper-cased codes.", iteration=1)])
WRONG = proposal("src/cart.py", "code == CODE", "code is CODE")
CLOSE = proposal("src/cart.py", "code == CODE", "code.lower() == CODE")
RIGHT = proposal("src/cart.py", "code == CODE", "code.upper() == CODE")
PARTIAL = proposal("src/cart.py", "code == CODE", "code.strip() == CODE")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_chat(messages: list[dict], *, last: str) -> None:
    assert messages and all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in messages)
    assert all(m["role"] in ("system", "user", "assistant") for m in messages)
    assert messages[-1]["role"] == last


def answer(message: dict) -> Proposal:
    return Proposal.model_validate_json(message["content"])


@pytest.fixture
def filled(store):
    # run r1: an ensemble of two candidates per iteration; iteration 2's first candidate is approved
    save_episode(store, "r1", "e1", TASK, [
        iteration("r1", "e1", 1, candidate=0, reward=0.3, prop=WRONG, messages=P1, model="gen-a"),
        iteration("r1", "e1", 1, candidate=1, reward=0.5, prop=CLOSE, messages=P1, model="gen-b"),
        iteration("r1", "e1", 2, candidate=0, reward=0.9, prop=RIGHT, messages=P2, model="gen-a"),
        iteration("r1", "e1", 2, candidate=1, reward=0.6, prop=PARTIAL, messages=P2, model="gen-b"),
        iteration("r1", "e1", 3, candidate=0, reward=None, prop=None, messages=P2),  # unusable reply: no answer
    ], status=EpisodeStatus.APPROVED)
    # two GitHub runs at the same prompt: the approved one was closed, the weaker one merged (as a draft)
    save_episode(store, "gh-closed", "e2", TASK, [iteration("gh-closed", "e2", 1, reward=0.95, prop=CLOSE, messages=P1)],
                 status=EpisodeStatus.APPROVED, kind="github")
    save_episode(store, "gh-merged", "e3", TASK, [iteration("gh-merged", "e3", 1, reward=0.6, prop=RIGHT, messages=P1)],
                 status=EpisodeStatus.EXHAUSTED, kind="github")
    github = GitHubStore(store)
    github.record_feedback(HumanFeedback(delivery_id="d1", repo=REPO, number=1, merged=False, run_id="gh-closed"))
    github.record_feedback(HumanFeedback(delivery_id="d2", repo=REPO, number=2, merged=True, run_id="gh-merged"))
    # an old record without its prompt, and an opted-out repository
    save_episode(store, "old", "e4", TASK, [iteration("old", "e4", 1, reward=0.9, prop=RIGHT)], status=EpisodeStatus.APPROVED)
    private = Task(title="Secret fix", repo="acme/private")
    save_episode(store, "p1", "e5", private,
                 [iteration("p1", "e5", 1, reward=0.9, prop=RIGHT, messages=generator_messages(private, "", []))],
                 status=EpisodeStatus.APPROVED)
    opt_out(store, "acme/private", reason="customer code")
    return store


def test_sft_keeps_approved_and_merged_attempts_with_their_real_prompts(filled, tmp_path):
    out = tmp_path / "sft.jsonl"
    result = export_training_data(filled, out, "sft")

    lines = read_jsonl(out)
    assert result.written == len(lines) == 2
    for line in lines:
        assert set(line) == {"messages"}
        assert_chat(line["messages"], last="assistant")
    by_prompt = {json.dumps(line["messages"][:-1]): answer(line["messages"][-1]) for line in lines}
    assert by_prompt == {json.dumps(P2): RIGHT, json.dumps(P1): RIGHT}  # r1's approved attempt, gh-merged's draft
    assert "Compare upper-cased codes." in lines[0]["messages"][1]["content"] + lines[1]["messages"][1]["content"]
    assert result.skipped_closed == 1  # gh-closed: approved by the bot, closed by a person
    assert result.skipped_without_prompt == 1 and result.skipped_opted_out == 1
    assert result.repos == [REPO]


def test_dpo_pairs_answers_to_the_same_prompt_higher_reward_and_merged_first(filled, tmp_path):
    out = tmp_path / "dpo.jsonl"
    result = export_training_data(filled, out, "dpo")

    lines = read_jsonl(out)
    assert result.written == len(lines)
    pairs = []
    for line in lines:
        assert set(line) == {"prompt", "chosen", "rejected"}
        assert_chat(line["prompt"], last="user")
        assert_chat(line["chosen"], last="assistant") and len(line["chosen"]) == 1
        assert_chat(line["rejected"], last="assistant") and len(line["rejected"]) == 1
        pairs.append((json.dumps(line["prompt"]), answer(line["chosen"][0]), answer(line["rejected"][0])))
    # P1: merged RIGHT (reward 0.6) beats closed CLOSE (0.95) and r1's WRONG (0.3); CLOSE appears once
    # P2: RIGHT (0.9) beats PARTIAL (0.6)
    assert sorted(pairs, key=str) == sorted([
        (json.dumps(P1), RIGHT, CLOSE),
        (json.dumps(P1), RIGHT, WRONG),
        (json.dumps(P2), RIGHT, PARTIAL),
    ], key=str)
    rewards = {WRONG.model_dump_json(): 0.3, PARTIAL.model_dump_json(): 0.6}
    for _, chosen, rejected in pairs:
        if rejected.model_dump_json() in rewards:  # pure reward pairs: chosen has the higher reward
            assert rejected != chosen and rewards[rejected.model_dump_json()] < 0.9


def test_dpo_by_task_pairs_across_iterations_with_the_rejected_attempts_prompt(store, tmp_path):
    save_episode(store, "r1", "e1", TASK, [
        iteration("r1", "e1", 1, reward=0.3, prop=WRONG, messages=P1),
        iteration("r1", "e1", 2, reward=0.9, prop=RIGHT, messages=P2),
    ], status=EpisodeStatus.APPROVED)
    out = tmp_path / "dpo.jsonl"
    assert export_training_data(store, out, "dpo").written == 0  # no two answers to one prompt
    assert export_training_data(store, out, "dpo", pairing="task").written == 1
    (line,) = read_jsonl(out)
    assert line["prompt"] == P1 and answer(line["chosen"][0]) == RIGHT and answer(line["rejected"][0]) == WRONG


def test_close_rewards_make_no_pair(store, tmp_path):
    save_episode(store, "r1", "e1", TASK, [
        iteration("r1", "e1", 1, candidate=0, reward=0.52, prop=WRONG, messages=P1),
        iteration("r1", "e1", 1, candidate=1, reward=0.5, prop=CLOSE, messages=P1),
    ], status=EpisodeStatus.EXHAUSTED)
    assert export_training_data(store, tmp_path / "d.jsonl", "dpo").written == 0
    assert export_training_data(store, tmp_path / "d.jsonl", "dpo", min_margin=0.01).written == 1


def test_bad_format_and_unwritable_path_are_clear_errors(store, tmp_path):
    with pytest.raises(StoreError, match="unknown export format 'csv'"):
        export_training_data(store, tmp_path / "x", "csv")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot write"):
        export_training_data(store, tmp_path / "file" / "sub" / "x.jsonl", "sft")
