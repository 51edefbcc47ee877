"""`aura-sicd episodes list|export` through bot.cli.main, on a real SQLite file in the data directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.records import Episode, EpisodeMetrics, EpisodeStatus, Task
from bot.store import Store
from tests.builders import episode, iteration

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("AURA_STORE_URL", raising=False)
    directory = tmp_path / "data"
    monkeypatch.setenv("AURA_DATA_DIR", str(directory))
    return directory


@pytest.fixture
def recorded_run(data_dir: Path) -> list[Episode]:
    parser, flag = Task(title="Fix the parser", repo="o/r"), Task(title="Add a flag", repo="o/r")
    attempts = [iteration("run-42", "ep-one", n, reward=r, at=T0) for n, r in ((1, 0.25), (2, 0.5))]
    episodes = [
        episode("run-42", "ep-one", parser, attempts, status=EpisodeStatus.EXHAUSTED, number=1, at=T0,
                metrics=EpisodeMetrics(tokens_used=1500)),
        episode("run-42", "ep-two", flag, [], status=EpisodeStatus.RUNNING, number=2, at=T0, finished_at=None),
    ]
    with Store.open(Settings().database_url) as store:
        store.create_run("run-42", kind="training", repo="o/r")
        for recorded in episodes:
            store.save_episode(recorded)
    return episodes


def test_export_writes_files_to_the_data_dir_by_default(recorded_run, data_dir: Path, capsys):
    assert main(["episodes", "export", "run-42"]) == 0
    printed = capsys.readouterr().out.split()
    expected = [data_dir / "episodes" / "run-42_ep0001.json", data_dir / "episodes" / "run-42_ep0002.json"]
    assert [Path(p).resolve() for p in printed] == [p.resolve() for p in expected]
    assert [Episode.model_validate_json(p.read_text()) for p in expected] == recorded_run


def test_export_to_a_chosen_directory(recorded_run, tmp_path: Path, capsys):
    out = tmp_path / "elsewhere"
    assert main(["episodes", "export", "run-42", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["run-42_ep0001.json", "run-42_ep0002.json"]


def test_export_of_an_unknown_run_exits_2(recorded_run, capsys):
    assert main(["episodes", "export", "nope"]) == 2
    assert "unknown run 'nope'" in capsys.readouterr().err


def test_list_runs(recorded_run, capsys):
    assert main(["episodes", "list"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["RUN", "KIND", "REPO", "STATUS", "EPISODES", "TOKENS", "STARTED"]
    assert line.split()[:6] == ["run-42", "training", "o/r", "running", "2", "1500"]


def test_list_a_runs_episodes(recorded_run, capsys):
    assert main(["episodes", "list", "run-42"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["EP", "EPISODE", "STATUS", "ITERATIONS", "BEST", "REWARD", "TOKENS"]
    assert lines[1].split() == ["1", "ep-one", "exhausted", "2", "0.500", "1500"]
    assert lines[2].split() == ["2", "ep-two", "running", "0", "-", "0"]


def test_list_on_an_empty_store(data_dir: Path, capsys):
    assert main(["episodes", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no runs recorded yet"


def test_list_of_an_unknown_run_exits_2(recorded_run, capsys):
    assert main(["episodes", "list", "nope"]) == 2
    assert "unknown run 'nope'" in capsys.readouterr().err


def test_a_database_that_cannot_be_opened_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AURA_DATA_DIR", str(blocker / "data"))  # a directory inside a file
    assert main(["episodes", "list"]) == 2
    assert "cannot create the database directory" in capsys.readouterr().err

    monkeypatch.setenv("AURA_STORE_URL", "mysql://root@localhost/aura")
    assert main(["episodes", "export", "run-1"]) == 2
    assert "unsupported database 'mysql'" in capsys.readouterr().err
