"""`aura-sicd scan`: findings from the checks on the base, one episode each, one branch per approved fix.

The real-repository test uses tomli (tests/data/realrepos/) before its fix 4e245a4 with that fix's test
added, so a test fails on the base; the fake model's answer is the real fix.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bot.cli import main
from bot.runs.realtasks import checkout, clone_bundle, make_real_task
from bot.runs.scan import findings_of
from bot.store import Store
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts
from tests.fakes.ollama import FakeOllama
from tests.repos import CALC_FILES, DISC, GEN, GOOD_RUBRIC, git, make_repo

DATA = Path(__file__).resolve().parents[1] / "data"
TOMLI_FIX = "4e245a4bbbefed99e550e196095ea65c851cf31d"  # `tomli.loads`: raise TypeError, not AttributeError

RUFF = """src/app/a.py:3:8: F401 [*] `os` imported but unused
src/app/a.py:9:1: F821 Undefined name `nope`
src/app/b.py:1:1: E902 No such file or directory
Found 3 errors.
"""
MYPY = """src/app/a.py:12: error: Incompatible return value type (got "int", expected "str")  [return-value]
src/app/a.py:12: note: See https://mypy.rtfd.io/en/stable/_refs.html#code-return-value
src/app/a.py:1: error: Cannot find implementation or library stub for module named "unidecode"  [import-not-found]
setup.py:7: error: Library stubs not installed for "setuptools"  [import-untyped]
Found 3 errors in 2 files (checked 4 source files)
"""


def check(name: str, status: CheckStatus, **kw) -> CheckResult:
    return CheckResult(name=name, command=[name], status=status, **kw)


def test_findings_are_grouped_per_test_and_per_file():
    report = CheckReport(backend="bwrap", checks=[
        check("syntax", CheckStatus.PASSED),
        check("lint", CheckStatus.FAILED, output=RUFF),
        check("types", CheckStatus.FAILED, output=MYPY),
        check("build", CheckStatus.ERROR, output="make: *** No rule to make target 'all'.  Stop."),
        check("tests", CheckStatus.FAILED, tests=TestCounts(passed=3, failed=2), failing_tests=[
            FailingTest(test_id="tests/test_a.py::test_one", message="assert 1 == 2", traceback="tests/test_a.py:4: in test_one"),
            FailingTest(test_id="tests/test_a.py::test_two", message="KeyError: 'x'"),
        ]),
    ])

    found = findings_of(report)

    assert [f.key for f in found] == [
        "test:tests/test_a.py::test_one", "test:tests/test_a.py::test_two",
        "lint:src/app/a.py", "lint:src/app/b.py", "types:src/app/a.py", "check:build",
    ]
    one = found[0].task("app")
    assert one.title == "Fix the failing test tests/test_a.py::test_one"
    assert "assert 1 == 2" in one.body and "tests/test_a.py:4: in test_one" in one.body
    assert one.source == "scan:test:tests/test_a.py::test_one" and one.files == ["tests/test_a.py"]
    lint_a = found[2]
    assert lint_a.title == "Fix the lint findings in src/app/a.py" and len(lint_a.details) == 2
    types_a = found[4]
    assert types_a.title == "Fix the type errors in src/app/a.py" and types_a.details == [MYPY.splitlines()[0]]
    assert "No rule to make target" in found[5].task("app").body


def test_tests_that_fail_without_ids_make_one_check_finding():
    report = CheckReport(backend="bwrap", checks=[
        check("tests", CheckStatus.ERROR, tests=TestCounts(errors=1), output="ImportError while importing test module"),
    ])
    [finding] = findings_of(report)
    assert finding.key == "check:tests" and "ImportError" in finding.task("app").body


def test_what_the_sandbox_lacks_is_no_finding():
    """Missing modules or stubs where the type checker runs say nothing about the code: no task."""
    only_environment = "\n".join(MYPY.splitlines()[2:])
    assert findings_of(CheckReport(backend="bwrap", checks=[check("types", CheckStatus.FAILED, output=only_environment)])) == []


# --- on a real repository -----------------------------------------------------------------------


@pytest.fixture
def tomli(tmp_path: Path) -> tuple[Path, dict]:
    """tomli at the parent of the fix, with the fix's test committed: one test fails on the base."""
    repo = clone_bundle(DATA / "realrepos" / "tomli.bundle", "master", tmp_path / "tomli")
    task = make_real_task(repo, TOMLI_FIX, project="tomli")
    checkout(repo, task.base)
    git(repo, "checkout", "-q", "-b", "main")
    _apply(repo, task.test_diff)
    git(repo, "commit", "-qam", "tests: loads() with bytes raises a friendly TypeError")
    fixed = {path: git(repo, "show", f"{TOMLI_FIX}:{path}") for path in task.source_files}
    changes = [{"file_path": path, "change_type": "update", "new_content": None, "rationale": "the real fix",
                "edits": [{"search": (repo / path).read_text(), "replace": text}]} for path, text in fixed.items()]
    return repo, {"summary": "Raise a TypeError naming the expected type", "changes": changes}


def _apply(repo: Path, diff: str) -> None:
    subprocess.run(["git", "apply", "-"], cwd=repo, input=diff, text=True, check=True)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama: FakeOllama) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    monkeypatch.setenv("AURA_DATA_DIR", str(data))
    monkeypatch.setenv("AURA_MAX_ITERATIONS", "2")
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "bwrap")
    return data


@pytest.mark.bwrap  # end to end: the CLI on a real project in the real sandbox
def test_scan_fixes_a_real_failing_test_on_its_own_branch(tomli, env, tmp_path, fake_ollama, capsys):
    repo, real_fix = tomli
    fake_ollama.pull(GEN, DISC).queue("generator", real_fix).queue("discriminator", GOOD_RUBRIC)
    report_file = tmp_path / "out" / "scan.json"

    code = main(["scan", str(repo), "--report", str(report_file)])

    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(report_file.read_text())
    test_id = "tests/test_error.py::TestError::test_type_error"
    assert [f["key"] for f in report["findings"]] == [f"test:{test_id}"]
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "syntax": "passed", "lint": "passed", "types": "passed", "tests": "failed"}
    [task] = report["tasks"]
    assert task["status"] == "approved" and task["iterations"] == 1 and task["tokens"] > 0
    assert "Expected str object" in git(repo, "show", f"{task['branch']}:src/tomli/_parser.py")
    assert git(repo, "rev-parse", "HEAD").strip() == report["base_sha"]  # the checkout is untouched
    # the generator saw the failure on the base, and the baseline was not run a second time
    assert "Expected str object, not 'bytes'" in fake_ollama.prompt(fake_ollama.requests_for("generator")[0])
    assert len(list((env / "baselines").iterdir())) == 1

    markdown = (tmp_path / "out" / "scan.md").read_text()
    assert markdown == out
    assert markdown.startswith(f"# Scan of tomli at {report['base_sha'][:12]}")
    assert f"| `test:{test_id}` | approved | 1 |" in markdown and f"`{task['branch']}`" in markdown
    with Store.open(f"sqlite:///{env / 'aura.db'}") as store:
        run = store.get_run(report["run_id"])
        assert run.kind == "scan" and run.status == "completed"
        assert store.run_summary(report["run_id"]).by_status == {"approved": 1}

    # the fixed branch has nothing left to do: no task, no model call
    calls = len(fake_ollama.requests)
    assert main(["scan", str(repo), "--base", task["branch"], "--dry-run", "--report", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["findings"] == [] and again["tasks"] == [] and len(fake_ollama.requests) == calls
    assert "Nothing to do: every check is green on the base." in capsys.readouterr().out


def test_scan_refuses_bad_arguments(tmp_path, env, capsys):
    assert main(["scan", str(tmp_path), "--max-tasks", "0"]) == 2
    assert "--max-tasks must be at least 1" in capsys.readouterr().err


@pytest.mark.bwrap
def test_a_model_server_that_goes_away_stops_the_scan_and_the_report_says_so(tmp_path, env, fake_ollama, monkeypatch,
                                                                              capsys):
    files = {**CALC_FILES, "tests/test_more.py": "from calc import add\n\n\ndef test_add_zero():\n    assert add(0, 1) == 1\n"}
    repo = make_repo(tmp_path / "calc", files)
    monkeypatch.setenv("AURA_OLLAMA_RETRIES", "1")
    fake_ollama.pull(GEN, DISC).fail_next("connect", times=5)

    code = main(["scan", str(repo), "--dry-run", "--report", str(tmp_path / "scan.json")])

    report = json.loads((tmp_path / "scan.json").read_text())
    assert code == 1
    keys = ["test:tests/test_calc.py::test_add", "test:tests/test_more.py::test_add_zero"]
    assert [f["key"] for f in report["findings"]] == keys
    assert report["tasks"] == [] and report["not_run"] == keys
    assert report["stopped"].startswith("the model server is unavailable")
    assert "- stopped early: the model server is unavailable" in capsys.readouterr().out
    with Store.open(f"sqlite:///{env / 'aura.db'}") as store:
        assert store.get_run(report["run_id"]).status == "error"
