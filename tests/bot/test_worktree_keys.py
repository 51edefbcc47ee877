"""Worktrees are keyed by repository and proposal id: two repositories whose proposals get the same id
never share, reset or remove each other's worktree (issue 18)."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.cycle.steps import CycleRequest, CycleSteps
from bot.records import Task
from tests.repos import CALC_FILES, make_repo


async def test_same_proposal_id_in_two_repositories_gets_two_worktrees(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    steps = CycleSteps(settings, llm=None)  # type: ignore[arg-type]  # checkout calls no model
    task = Task(title="t", body="b")
    one = make_repo(tmp_path / "one", CALC_FILES)
    two = make_repo(tmp_path / "two", {**CALC_FILES, "README.md": "# other\n"})
    ws1 = await steps.checkout(CycleRequest(run_id="r", episode_id="e", repo_dir=one, repo="acme/calc", task=task))
    ws2 = await steps.checkout(CycleRequest(run_id="r", episode_id="e", repo_dir=two, repo="other/calc", task=task))
    assert ws1.proposal_id == ws2.proposal_id and ws1.path != ws2.path
    assert (ws1.path / "README.md").read_text() == "# calc\n\nA tiny calculator.\n"
    assert (ws2.path / "README.md").read_text() == "# other\n"
    assert ws1.path.parent.name.startswith("acme_calc-") and ws2.path.parent.name.startswith("other_calc-")
