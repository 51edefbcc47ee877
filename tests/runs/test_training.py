"""A two-epoch training run, model faked at the HTTP level, real git and the bubblewrap sandbox:
epoch 1's guidance, memory and patterns reach epoch 2's generator requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.runs.training import TrainingError, train
from bot.records import GuidanceEntry, Task
from bot.store import Store
from sandbox.config import SandboxSettings
from tests.fakes.ollama import FakeOllama
from tests.repos import make_repo

GEN, DISC = "qwen2.5-coder:7b", "qwen2.5:7b"
FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}
ADD_TASK = Task(title="add() returns the wrong result", body="add(2, 3) should be 5 (calc.py).")
MUL_TASK = Task(title="Sums come out negative", body="add(2, 3) gives -1 in calc.py; sums must never flip sign.")


def fix(search: str, replace: str) -> dict:
    return {"summary": f"{search.strip()} -> {replace.strip()}", "changes": [{
        "file_path": "calc.py", "change_type": "update", "new_content": None, "rationale": "",
        "edits": [{"search": search, "replace": replace}]}]}


ADD_WRONG, ADD_RIGHT = fix("    return a - b", "    return a * b"), fix("    return a - b", "    return a + b")
MUL_WRONG, MUL_RIGHT = fix("    return a - b", "    return b - a"), ADD_RIGHT
GOOD = {"coverage": 0.9, "accuracy": 0.95, "coherence": 0.9, "formatting": 0.9, "issues": [], "comments": []}
WEAK = {"coverage": 0.3, "accuracy": 0.2, "coherence": 0.6, "formatting": 0.9, "issues": ["wrong operator"], "comments": []}
ADD_LESSON = {"guidance": "add must use +: test_add expects add(2, 3) == 5.", "focus_points": ["calc.py: add"], "improvement_plan": []}
MUL_LESSON = {"guidance": "Swapping the operands keeps the subtraction: add must use + (add(2, 3) == 5).", "focus_points": [], "improvement_plan": []}
HUMAN = "Keep calc.py free of imports: the functions are plain arithmetic."


@pytest.fixture
def settings(tmp_path: Path, fake_ollama: FakeOllama) -> Settings:
    fake_ollama.pull(GEN, DISC)
    return Settings(
        _env_file=None, ollama_host=fake_ollama.host, data_dir=tmp_path / "data", max_iterations=2,
        sandbox=SandboxSettings(_env_file=None, backend="bwrap"),  # the shared tool cache
    )


@pytest.mark.bwrap
async def test_two_epochs_carry_guidance_memory_and_patterns_forward(tmp_path, settings, fake_ollama):
    repo = make_repo(tmp_path / "calc", FILES)
    store = Store.open(settings.database_url)
    store.add_guidance("calc", GuidanceEntry(source="human", text=HUMAN, path="calc.py", author="maria"))
    # two tasks with the same cause; each episode starts from the base commit (dry run)
    # epoch 1: the first is fixed on the second attempt (approved); the second fails twice (exhausted)
    # epoch 2: both are fixed at the first attempt
    fake_ollama.queue("generator", ADD_WRONG, ADD_RIGHT, MUL_WRONG, MUL_WRONG, ADD_RIGHT, MUL_RIGHT)
    fake_ollama.queue("discriminator", WEAK, GOOD, WEAK, WEAK, GOOD, GOOD)
    fake_ollama.queue("agitator", ADD_LESSON, MUL_LESSON)

    result = await train(settings, fake_ollama.llm(), store, [ADD_TASK, MUL_TASK], repo, epochs=2)

    requests = [fake_ollama.prompt(r) for r in fake_ollama.requests_for("generator")]
    assert len(requests) == 6
    e1_add, _, e1_mul, _, e2_add, e2_mul = requests
    # epoch 1 starts with only the human memory entry
    assert HUMAN in e1_add and HUMAN in e1_mul
    assert ADD_LESSON["guidance"] not in e1_add and "approved change" not in e1_add
    # epoch 2: the approved add episode's coach advice comes from memory, its change as a pattern example
    assert ADD_LESSON["guidance"] in e2_add and HUMAN in e2_add
    assert "An approved change for a similar earlier task" in e2_add and "+    return a + b" in e2_add
    # epoch 2: the exhausted mul episode's advice is carried over (memory ignores non-approved runs)
    assert MUL_LESSON["guidance"] in e2_mul and "From the previous epoch" in e2_mul
    assert MUL_LESSON["guidance"] not in e2_add

    by_epoch = {e.epoch: e for e in result.epochs}
    assert (by_epoch[1].solve_rate, by_epoch[1].mean_iterations) == (0.5, 2.0)
    assert (by_epoch[2].solve_rate, by_epoch[2].mean_iterations) == (1.0, 1.0)
    rows = {(e.epoch, "add" if e.task == ADD_TASK.title else "mul"): e for e in result.episodes}
    assert (rows[(1, "add")].memory_entries, rows[(1, "add")].pattern_examples, rows[(1, "add")].carried_entries) == (1, 0, 0)
    assert (rows[(2, "add")].memory_entries, rows[(2, "add")].pattern_examples) == (2, 1)
    assert rows[(2, "mul")].carried_entries == 1
    assert result.patterns_recorded == 3  # the first task in epoch 1, both in epoch 2
    summary = store.run_summary(result.run_id)
    assert (summary.total_episodes, summary.completed) == (4, 4)
    assert store.get_run(result.run_id).kind == "training" and store.get_run(result.run_id).status == "completed"
    assert len(store.list_audit(run_id=result.run_id, action="training.episode")) == 4
    print(f"\nepoch 1: solve rate {by_epoch[1].solve_rate:.2f}, mean iterations {by_epoch[1].mean_iterations:.1f}, "
          f"mean best reward {by_epoch[1].mean_best_reward:.3f}, tokens {by_epoch[1].tokens}")
    print(f"epoch 2: solve rate {by_epoch[2].solve_rate:.2f}, mean iterations {by_epoch[2].mean_iterations:.1f}, "
          f"mean best reward {by_epoch[2].mean_best_reward:.3f}, tokens {by_epoch[2].tokens}")
    print(f"epoch 2 add prompt: {rows[(2, 'add')].memory_entries} memory + {rows[(2, 'add')].pattern_examples} pattern; "
          f"mul prompt: {rows[(2, 'mul')].memory_entries} memory + {rows[(2, 'mul')].pattern_examples} pattern + "
          f"{rows[(2, 'mul')].carried_entries} carried")


async def test_training_refuses_empty_runs(tmp_path, settings, fake_ollama):
    store = Store.open(settings.database_url)
    with pytest.raises(TrainingError, match="at least one epoch"):
        await train(settings, fake_ollama.llm(), store, [ADD_TASK], tmp_path, epochs=0)
    with pytest.raises(TrainingError, match="at least one task"):
        await train(settings, fake_ollama.llm(), store, [], tmp_path, epochs=1)
