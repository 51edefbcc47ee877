"""Guidance memory: eligibility, relevance by path and text, weighting, forgetting."""

from __future__ import annotations

from bot.learning.memory import forget, list_memory, memory_guidance, select_memory, task_paths
from bot.records import EpisodeStatus, GuidanceEntry, Task
from bot.store.github import GitHubStore, HumanFeedback
from tests.builders import T0, iteration, save_episode

REPO = "acme/shop"


def add(store, source, text, *, path=None, run_id=None, episode_id=None, author=None, repo=REPO):
    return store.add_guidance(
        repo, GuidanceEntry(source=source, text=text, path=path, author=author, created_at=T0),
        run_id=run_id, episode_id=episode_id,
    )


def episode(store, run_id, status):
    task = Task(title="t", repo=REPO)
    save_episode(store, run_id, f"{run_id}-ep", task, [iteration(run_id, f"{run_id}-ep", 1, reward=0.9)], status=status)
    return run_id, f"{run_id}-ep"


def test_task_paths_are_named_files_and_paths_in_the_text():
    task = Task(title="Crash in src/cart.py", body="The total in `src/cart.py` and README.md is off.", files=["src/tax.py"])
    assert task_paths(task) == {"src/cart.py", "README.md", "src/tax.py"}


def test_selection_by_path_and_by_similarity(store):
    by_path = add(store, "review", "Use Decimal for money, never float.", path="src/cart.py", author="maria")
    by_text = add(store, "human", "Discount codes are case-insensitive: compare them upper-cased.")
    neighbour = add(store, "review", "Keep helpers private with a leading underscore.", path="src/tax.py")
    unrelated = add(store, "human", "The changelog follows keep-a-changelog.", path="CHANGELOG.md")

    task = Task(title="Discount codes fail for lower-case input", body="Applying `summer10` to src/cart.py fails.", repo=REPO)
    hits = {h.entry.id: h for h in select_memory(store, REPO, task)}

    assert set(hits) == {by_path, by_text, neighbour}
    assert unrelated not in hits
    assert hits[by_path].path_score == 1.0
    assert hits[neighbour].path_score == 0.5  # same directory as a file the task names
    assert hits[by_text].path_score == 0.0 and hits[by_text].text_score == 1.0
    # as generator guidance: source memory, least relevant first, authorship and path kept
    guidance = memory_guidance(store, REPO, task)
    assert [g.source for g in guidance] == ["memory"] * 3
    assert [g.text for g in guidance] == [
        "Keep helpers private with a leading underscore.",  # 0.9 x (0.5 + text)
        "Discount codes are case-insensitive: compare them upper-cased.",  # 1.0 x (0 + 1)
        "Use Decimal for money, never float.",  # 0.9 x (1 + text): the named file wins
    ]
    assert guidance[-1].author == "maria" and guidance[-1].path == "src/cart.py"


def test_agitator_entries_count_only_from_approved_and_unrejected_runs(store):
    approved = episode(store, "r-ok", EpisodeStatus.APPROVED)
    exhausted = episode(store, "r-bad", EpisodeStatus.EXHAUSTED)
    closed = episode(store, "r-closed", EpisodeStatus.APPROVED)
    kept = add(store, "agitator", "Round the cart total after summing.", path="src/cart.py", run_id=approved[0], episode_id=approved[1])
    add(store, "agitator", "Round each line of the cart first.", path="src/cart.py", run_id=exhausted[0], episode_id=exhausted[1])
    add(store, "agitator", "Cache the cart total.", path="src/cart.py", run_id=closed[0], episode_id=closed[1])
    GitHubStore(store).record_feedback(HumanFeedback(delivery_id="d1", repo=REPO, number=7, merged=False, run_id="r-closed"))
    add(store, "policy", "Refused: .github/workflows/ci.yml", path="src/cart.py")
    human = add(store, "human", "Totals are shown with two decimals.", path="src/cart.py")

    task = Task(title="Cart total is wrong", files=["src/cart.py"], repo=REPO)
    assert {h.entry.id for h in select_memory(store, REPO, task)} == {kept, human}
    assert {g.id for g in list_memory(store, REPO)} == {kept, human}


def test_people_outrank_the_agitator_on_equal_relevance(store):
    run = episode(store, "r1", EpisodeStatus.APPROVED)
    agitator = add(store, "agitator", "Validate the quantity before adding.", path="src/cart.py", run_id=run[0], episode_id=run[1])
    review = add(store, "review", "Validate the quantity before adding it.", path="src/cart.py")
    human = add(store, "human", "Validate the quantity before adding an item.", path="src/cart.py")

    hits = select_memory(store, REPO, Task(title="Quantity check", files=["src/cart.py"], repo=REPO))
    assert [h.entry.id for h in hits] == [human, review, agitator]
    assert hits[0].score > hits[1].score > hits[2].score


def test_limit_and_duplicates(store):
    for i in range(5):
        add(store, "human", f"Note {i} about the cart module.", path="src/cart.py")
    add(store, "human", "Note 0 about the cart  module.", path="src/cart.py")  # same text, other spacing
    hits = select_memory(store, REPO, Task(title="cart", files=["src/cart.py"], repo=REPO), limit=10)
    assert len(hits) == 5
    assert len(select_memory(store, REPO, Task(title="cart", files=["src/cart.py"], repo=REPO), limit=2)) == 2
    assert select_memory(store, REPO, Task(title="cart", files=["src/cart.py"], repo=REPO), limit=0) == []


def test_memory_never_crosses_repositories(store):
    add(store, "human", "Use Decimal for money.", path="src/cart.py", repo="other/repo")
    assert select_memory(store, REPO, Task(title="money", files=["src/cart.py"], repo=REPO)) == []


def test_forget_removes_one_entry_of_its_own_repository_and_audits(store):
    mine = add(store, "review", "Use Decimal for money.", path="src/cart.py")
    theirs = add(store, "review", "Use Decimal for money.", path="src/cart.py", repo="other/repo")
    task = Task(title="money", files=["src/cart.py"], repo=REPO)
    assert [h.entry.id for h in select_memory(store, REPO, task)] == [mine]

    assert forget(store, REPO, theirs, actor="maria") is False  # another repository's id: refused
    assert forget(store, REPO, mine, actor="maria") is True
    assert forget(store, REPO, mine) is False
    assert select_memory(store, REPO, task) == []
    assert [g.id for g in store.list_guidance("other/repo")] == [theirs]
    decisions = [(a.actor, a.decision) for a in store.list_audit(action="memory.forget")]
    assert decisions == [("cli", "not_found"), ("maria", "deleted"), ("maria", "not_found")]
