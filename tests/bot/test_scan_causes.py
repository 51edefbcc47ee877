"""`scan` works on causes: the failing tests of one bug make one task, not one per test id.

The repository is QuixBugs-style (QuixBugs' bucketsort, with its real bug, and its parametrized test
cases): one bug fails every non-empty case of one test. A second program's bug is reached by two test
functions, whose tracebacks end in the same line of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.runs.causes import failing_frame, group_by_cause, function_of
from bot.runs.scan import findings_of
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts
from tests.fakes.ollama import FakeOllama
from tests.repos import DISC, GEN, GOOD_RUBRIC, make_repo

BUCKETSORT = '''def bucketsort(arr, k):
    counts = [0] * k
    for x in arr:
        counts[x] += 1

    sorted_arr = []
    for i, count in enumerate(arr):
        sorted_arr.extend([i] * count)

    return sorted_arr
'''
CASES = [
    [[[], 14], []],
    [[[3, 11, 2, 9, 1, 5], 12], [1, 2, 3, 5, 9, 11]],
    [[[3, 2, 4, 2, 3, 5], 6], [2, 2, 3, 3, 4, 5]],
    [[[1, 3, 4, 6, 4, 2, 9, 1, 2, 9], 10], [1, 1, 2, 2, 3, 4, 4, 6, 9, 9]],
    [[[20, 19, 18, 17, 16, 15, 14, 13, 12, 11], 21], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]],
    [[[20, 21, 22, 23, 24, 25, 26, 27, 28, 29], 30], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]],
    [[[8, 5, 3, 1, 9, 6, 0, 7, 4, 2, 5], 10], [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]],
]
TEST_BUCKETSORT = f'''import json

import pytest

from python_programs.bucketsort import bucketsort

testdata = json.loads({json.dumps(json.dumps(CASES))})


@pytest.mark.parametrize("input_data,expected", testdata)
def test_bucketsort(input_data, expected):
    assert bucketsort(*input_data) == expected
'''
QUIXBUGS = {
    "python_programs/__init__.py": "",
    "python_programs/bucketsort.py": BUCKETSORT,
    "python_testcases/__init__.py": "",
    "python_testcases/test_bucketsort.py": TEST_BUCKETSORT,
    "README.md": "# QuixBugs (two programs)\n",
}


def frame(path: str, line: int, function: str) -> str:
    return f'  File "/workspace/{path}", line {line}, in {function}\n'


def test_cases_of_one_function_and_tests_failing_in_one_frame_are_one_cause_each():
    inner = frame("src/calc.py", 7, "divide")
    tests = [
        FailingTest(test_id="tests/test_a.py::test_x[1]", message="assert 1 == 2"),
        FailingTest(test_id="tests/test_b.py::test_ratio", traceback=frame("tests/test_b.py", 3, "test_ratio") + inner),
        FailingTest(test_id="tests/test_a.py::test_x[2]", message="assert 3 == 2"),
        FailingTest(test_id="tests/test_c.py::test_mean", traceback=frame("tests/test_c.py", 9, "test_mean") + inner),
        FailingTest(test_id="tests/test_a.py::test_y", message="assert 0"),
    ]
    groups = group_by_cause(tests)
    assert [[t.test_id for t in g] for g in groups] == [
        ["tests/test_a.py::test_x[1]", "tests/test_a.py::test_x[2]"],
        ["tests/test_b.py::test_ratio", "tests/test_c.py::test_mean"],
        ["tests/test_a.py::test_y"],
    ]
    assert failing_frame(tests[1]) == ("src/calc.py", 7) and failing_frame(tests[0]) is None
    assert function_of("t.py::TestA::test_x[a-b]") == "t.py::TestA::test_x"
    report = CheckReport(backend="bwrap", checks=[CheckResult(
        name="tests", command=["pytest"], status=CheckStatus.FAILED, tests=TestCounts(passed=1, failed=5),
        failing_tests=tests)])
    found = findings_of(report)
    assert [f.key for f in found] == ["test:tests/test_a.py::test_x", "cause:src/calc.py:7", "test:tests/test_a.py::test_y"]
    assert found[0].title == "Fix the failing test tests/test_a.py::test_x (2 failing cases)"
    body = found[1].task("app").body
    assert body.startswith("2 tests fail for one cause (`tests/test_b.py::test_ratio`, `tests/test_c.py::test_mean`)")


@pytest.mark.bwrap
def test_scan_makes_one_task_for_the_bug_that_fails_every_case(tmp_path: Path, monkeypatch, fake_ollama: FakeOllama):
    repo = make_repo(tmp_path / "quixbugs", QUIXBUGS)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    monkeypatch.setenv("AURA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AURA_MAX_ITERATIONS", "1")
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "bwrap")
    fix = {"summary": "Iterate over the counts, not the input.", "changes": [{
        "file_path": "python_programs/bucketsort.py", "change_type": "update", "new_content": None, "rationale": "",
        "edits": [{"search": "    for i, count in enumerate(arr):\n", "replace": "    for i, count in enumerate(counts):\n"}]}]}
    fake_ollama.pull(GEN, DISC).queue("generator", fix).queue("discriminator", GOOD_RUBRIC)

    assert main(["scan", str(repo), "--max-tasks", "2", "--dry-run", "--report", str(tmp_path / "scan.json")]) == 0

    report = json.loads((tmp_path / "scan.json").read_text())
    [finding] = report["findings"]
    assert finding["key"] == "test:python_testcases/test_bucketsort.py::test_bucketsort"
    assert len(finding["test_ids"]) == 6  # every case but the empty input's
    [task] = report["tasks"]  # one task, one episode, for the one bug
    assert task["status"] == "approved" and len(fake_ollama.requests_for("generator")) == 1
    assert "6 tests fail for one cause" in fake_ollama.prompt(fake_ollama.requests_for("generator")[0])
