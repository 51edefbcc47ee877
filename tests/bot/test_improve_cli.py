"""`aura-sicd improve`: exit codes and messages a person understands."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.cycle.test_cycle import AGITATION
from tests.fakes.ollama import FakeOllama
from tests.repos import CALC_FILES, DISC, GEN, GOOD_RUBRIC, RIGHT_FIX, WEAK_RUBRIC, WRONG_FIX, git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", CALC_FILES)


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama: FakeOllama) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    monkeypatch.setenv("AURA_DATA_DIR", str(data))
    monkeypatch.setenv("AURA_MAX_ITERATIONS", "2")
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "bwrap")
    return data


@pytest.mark.bwrap  # the CLI end to end: the sandbox of its settings
def test_approved_run_prints_the_pr_and_exits_0(repo, env, fake_ollama, capsys):
    fake_ollama.pull(GEN, DISC).queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)

    code = main(["improve", str(repo), "--task", "add() returns the wrong result\nadd(2, 3) should be 5"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("# Aura SICD: add() returns the wrong result")
    assert "- **UPDATE**: `calc.py`\n  add must add its operands" in out
    assert "## Test Results" in out and "## Reward Trace" in out and "Training Run ID: `" in out
    proposals = list((env / "proposals").glob("*.md"))
    assert len(proposals) == 1 and proposals[0].read_text() == out
    branch = f"aura-sicd/{proposals[0].stem}"
    assert "return a + b" in git(repo, "show", f"{branch}:calc.py")
    assert "approved" in err and branch in err


@pytest.mark.bwrap
def test_exhausted_run_exits_1(repo, fake_ollama, capsys):
    fake_ollama.pull(GEN, DISC)
    fake_ollama.always("generator", WRONG_FIX).always("discriminator", WEAK_RUBRIC).always("agitator", AGITATION)

    code = main(["improve", str(repo), "--task", "fix add"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "not approved" in err and "after 2 attempt(s)" in err
    assert out.startswith("# [draft] Aura SICD: fix add")


def test_no_change_needed_while_the_tasks_test_fails_is_not_exit_0(repo, fake_ollama, capsys):
    """Issue 17: "no change is needed" is a claim to check; on calc, test_add fails on the base."""
    fake_ollama.pull(GEN, DISC)
    fake_ollama.always("generator", {"summary": "add already adds; nothing to do", "changes": []})

    code = main(["improve", str(repo), "--task", "fix add: test_add fails"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "No change is needed" not in out + err and "not approved" in err


def test_model_not_pulled_exits_2(repo, fake_ollama, capsys):
    fake_ollama.pull(GEN)  # the discriminator's model is missing

    code = main(["improve", str(repo), "--task", "fix add"])

    assert code == 2
    assert f"model {DISC} is not pulled: run `ollama pull {DISC}`" in capsys.readouterr().err
    assert not fake_ollama.requests


def test_ollama_down_names_the_host(repo, fake_ollama, capsys):
    fake_ollama.unreachable = True

    code = main(["improve", str(repo), "--task", "fix add"])

    err = capsys.readouterr().err
    assert code == 2
    assert "OLLAMA_HOST" in err and fake_ollama.host in err


def test_not_a_git_repository_exits_2(tmp_path, fake_ollama, capsys):
    fake_ollama.pull(GEN, DISC)
    plain = tmp_path / "plain"
    plain.mkdir()

    code = main(["improve", str(plain), "--task", "fix add"])

    assert code == 2
    assert "not a git repository" in capsys.readouterr().err


def test_missing_task_exits_2(repo, capsys):
    assert main(["improve", str(repo)]) == 2
    assert "--task" in capsys.readouterr().err


@pytest.mark.bwrap
def test_task_file(repo, tmp_path, fake_ollama, capsys):
    fake_ollama.pull(GEN, DISC).queue("generator", RIGHT_FIX).queue("discriminator", GOOD_RUBRIC)
    task = tmp_path / "issue.md"
    task.write_text("# Fix add\n\nadd(2, 3) should be 5, it gives -1.\n")

    code = main(["improve", str(repo), "--task-file", str(task), "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("# Aura SICD: Fix add")
    assert "it gives -1" in fake_ollama.prompt(fake_ollama.requests_for("generator")[0])
    assert git(repo, "branch", "--list", "aura-sicd/*") == ""  # dry run leaves nothing
