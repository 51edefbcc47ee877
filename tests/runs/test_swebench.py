"""SWE-bench-format evaluation (bot/runs/swebench/): loading, the oracle's edits, SWE-bench's rule, the
report files, compare and resume; the full cycle with a scripted fake model (wrong fix, empty answer) on a
small repository, and the oracle on three shipped real instances (the CI's real-task runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.edits import apply_changes
from bot.runs.swebench.hidden import HiddenRun, judge, parse_go_report, parse_pytest_report
from bot.runs.swebench.instances import Instance, InstanceError, load_instances, shipped, write_instances
from bot.runs.swebench.oracle import ORACLE, OracleError, OracleLLM, gold_proposal
from bot.runs.swebench.report import (
    InstanceResult,
    Report,
    bootstrap_ci,
    compare,
    load_report,
    summarize,
    write_outputs,
)
from bot.runs.swebench.repos import RepoError, Repos
from bot.runs.swebench.run import SwebenchRun
from bot.records import Proposal
from sandbox.config import SandboxSettings
from tests.repos import CALC_FILES, DISC, GEN, GOOD_RUBRIC, NO_CHANGE, WRONG_FIX, calc_update, git, make_repo

REALREPOS = Path(__file__).resolve().parent.parent / "data" / "realrepos"
HIDDEN_TEST = "from calc import add\n\n\ndef test_add_negative():\n    assert add(-2, -3) == -5\n"


def diff_of(repo: Path, change: dict[str, str]) -> str:
    """The diff that writes `change` ({path: text}) on HEAD, leaving the repository as it was."""
    for rel, text in change.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached")
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfd")
    return diff


@pytest.fixture
def calc(tmp_path: Path) -> tuple[Path, Instance]:
    """acme/calc under a --repos folder, and its instance: add() subtracts; a hidden test checks negatives."""
    repo = make_repo(tmp_path / "repos" / "acme__calc", CALC_FILES)
    base = git(repo, "rev-parse", "HEAD").strip()
    gold = diff_of(repo, {"calc.py": CALC_FILES["calc.py"].replace("a - b", "a + b")})
    test_patch = diff_of(repo, {"tests/test_hidden.py": HIDDEN_TEST})
    instance = Instance(
        instance_id="acme__calc-1", repo="acme/calc", base_commit=base, patch=gold, test_patch=test_patch,
        problem_statement="add() returns the wrong result\n\nadd(2, 3) should be 5.",
        FAIL_TO_PASS=["tests/test_hidden.py::test_add_negative", "tests/test_calc.py::test_add"],
        PASS_TO_PASS=["tests/test_calc.py::test_mul"],
    )
    return tmp_path / "repos", instance


def settings_for(tmp_path: Path, host: str = "http://ollama.test") -> Settings:
    return Settings(_env_file=None, ollama_host=host, data_dir=tmp_path / "data", max_iterations=1,
                    sandbox=SandboxSettings(_env_file=None, backend="bwrap"))


# --- instances -----------------------------------------------------------------------------------


def test_instances_load_from_jsonl_and_json_with_lists_stored_as_json_strings(tmp_path, calc):
    _, instance = calc
    write_instances(tmp_path / "i.jsonl", [instance])
    assert '"FAIL_TO_PASS": "[\\"tests/test_hidden.py' in (tmp_path / "i.jsonl").read_text()  # as the datasets store it
    (loaded,) = load_instances(tmp_path / "i.jsonl")
    assert loaded == instance
    (tmp_path / "i.json").write_text(json.dumps([instance.model_dump()]))
    assert load_instances(tmp_path / "i.json") == [instance]
    assert instance.task().title == "add() returns the wrong result" and instance.test_files() == ["tests/test_hidden.py"]


def test_bad_instance_files_name_the_file_line_and_instance(tmp_path, calc):
    _, instance = calc
    good = instance.model_dump()
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "test_patch"}, "i.jsonl:2: instance acme__calc-1 .*test_patch"),
        "repo": ({**good, "repo": "calc"}, "repo: .*'calc' is not owner/name"),
        "f2p": ({**good, "FAIL_TO_PASS": "[]"}, "FAIL_TO_PASS: .*at least one test"),
        "json": ({**good, "PASS_TO_PASS": "[oops"}, "not a JSON list"),
    }
    for record, message in cases.values():
        (tmp_path / "i.jsonl").write_text(json.dumps({**good, "instance_id": "ok-1"}) + "\n" + json.dumps(record) + "\n")
        with pytest.raises(InstanceError, match=message):
            load_instances(tmp_path / "i.jsonl")
    (tmp_path / "i.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(InstanceError, match="i.jsonl:2: instance acme__calc-1 appears twice"):
        load_instances(tmp_path / "i.jsonl")
    (tmp_path / "i.jsonl").write_text("{not json\n")
    with pytest.raises(InstanceError, match="i.jsonl:1 is not a JSON object"):
        load_instances(tmp_path / "i.jsonl")
    write_instances(tmp_path / "i.jsonl", [instance])
    with pytest.raises(InstanceError, match="no instance nope"):
        load_instances(tmp_path / "i.jsonl", only=["nope"])


def test_the_shipped_suites_hold_fifteen_real_instances_of_four_projects_and_the_twelve_toys():
    real = load_instances(shipped("real"))
    assert len(real) >= 15 and len({i.repo for i in real}) >= 4
    assert all(i.patch and i.test_patch and i.FAIL_TO_PASS for i in real)
    toys = load_instances(shipped("toys"))
    assert len(toys) == 12 and all(i.repo.startswith("aura-sicd/toy-") and i.patch for i in toys)


def test_a_missing_repository_or_commit_names_the_instance(tmp_path, calc):
    repos_dir, instance = calc
    with pytest.raises(RepoError, match="instance acme__calc-1: no repository acme/calc in .*acme__calc.bundle"):
        Repos(tmp_path / "elsewhere", tmp_path / "cache").mirror(instance)
    missing = instance.model_copy(update={"base_commit": "0" * 40})
    with pytest.raises(RepoError, match=f"instance acme__calc-1: commit {'0' * 40} is not in"):
        Repos(repos_dir, tmp_path / "cache").mirror(missing)


# --- the oracle ----------------------------------------------------------------------------------


def test_the_gold_patch_becomes_unique_search_replace_edits_creates_and_deletes(tmp_path):
    text = "".join(f"def f{n}():\n    return 0\n\n\n" for n in range(6))  # every body alike: context must tell them apart
    repo = make_repo(tmp_path / "r", {"m.py": text, "old.py": "x = 1\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    fixed = text.replace("def f4():\n    return 0", "def f4():\n    return 4").replace("def f0():\n    return 0", "def f0():\n    return 10")
    gold = diff_of(repo, {"m.py": fixed, "new.py": "y = 2\n"})
    (repo / "old.py").unlink()
    git(repo, "add", "-A")
    gold += git(repo, "diff", "--cached", "--", "old.py")
    git(repo, "reset", "-q", "--hard")

    proposal = gold_proposal(repo, base, gold)
    kinds = {c.file_path: c.change_type.value for c in proposal.changes}
    assert kinds == {"m.py": "update", "new.py": "create", "old.py": "delete"}
    edits = proposal.changes[0].edits
    assert len(edits) == 2 and all(text.count(e.search) == 1 for e in edits)
    apply_changes(repo, proposal.changes)
    assert (repo / "m.py").read_text() == fixed and (repo / "new.py").read_text() == "y = 2\n"
    assert not (repo / "old.py").exists()


def test_a_file_without_a_final_newline_keeps_it_that_way(tmp_path):
    repo = make_repo(tmp_path / "r", {"v.py": "A = 1\nB = 2"})
    base = git(repo, "rev-parse", "HEAD").strip()
    gold = diff_of(repo, {"v.py": "A = 1\nB = 3"})
    assert "\\ No newline at end of file" in gold
    (change,) = gold_proposal(repo, base, gold).changes
    apply_changes(repo, [change])
    assert (repo / "v.py").read_text() == "A = 1\nB = 3"
    with pytest.raises(OracleError, match="no gold `patch`"):
        gold_proposal(repo, base, "")


async def test_the_oracle_answers_each_role_and_records_its_calls_as_oracle():
    proposal = Proposal(summary="fix", changes=[])
    oracle = OracleLLM(proposal)
    messages = [{"role": "user", "content": "fix it"}]
    answer, calls = await oracle.structured(role="generator", model=ORACLE, messages=messages, schema=Proposal,
                                            num_ctx=4096, max_output_tokens=512)
    assert answer == proposal and oracle.prompts == [messages]
    rubric, calls2 = await oracle.structured(role="discriminator", model=ORACLE, messages=messages, schema=Proposal,
                                             num_ctx=4096, max_output_tokens=512)
    assert rubric.accuracy == 1.0 and "oracle" in rubric.comments[0]
    assert [c.model for c in calls + calls2] == [ORACLE, ORACLE] and calls[0].prompt_tokens > 0


# --- SWE-bench's rule ----------------------------------------------------------------------------


def test_test_outcomes_are_read_from_pytest_and_go_and_judged_by_swebench_rule(calc):
    _, instance = calc
    output = ("PASSED tests/test_calc.py::test_mul\nXFAIL tests/test_calc.py::test_add - known\n"
              "FAILED tests/test_hidden.py::test_add_negative - assert -1 == -5\nSKIPPED [1] tests/x.py:3: no\n")
    statuses = parse_pytest_report(output)
    assert statuses == {"tests/test_calc.py::test_mul": "PASSED", "tests/test_calc.py::test_add": "XFAIL",
                        "tests/test_hidden.py::test_add_negative": "FAILED"}
    failed = judge(instance, HiddenRun(statuses=statuses))
    assert not failed.resolved and failed.fail_to_pass_failed == ["tests/test_hidden.py::test_add_negative"]
    statuses["tests/test_hidden.py::test_add_negative"] = "PASSED"
    assert judge(instance, HiddenRun(statuses=statuses)).resolved
    del statuses["tests/test_calc.py::test_mul"]  # a PASS_TO_PASS test that did not run fails
    assert judge(instance, HiddenRun(statuses=statuses)).pass_to_pass_failed == ["tests/test_calc.py::test_mul"]
    go = '{"Action":"pass","Package":"p","Test":"TestA"}\n{"Action":"fail","Package":"p","Test":"TestB/sub"}\n'
    assert parse_go_report(go) == {"TestA": "PASSED", "TestB/sub": "FAILED"}


# --- report, predictions, compare ----------------------------------------------------------------


def result(instance_id: str, model: str, resolved: bool, status: str | None = None) -> InstanceResult:
    return InstanceResult(instance_id=instance_id, repo="o/r", model=model, resolved=resolved, iterations=1,
                          status=status or ("resolved" if resolved else "unresolved"), tokens=100, wall_s=2.0,
                          model_patch="diff --git a/x b/x\n" if status != "empty patch" else "")


def test_report_files_predictions_and_compare(tmp_path, capsys):
    a = [result(f"i{n}", "m1", n < 3) for n in range(6)]
    b = [result(f"i{n}", "m2", n in (1, 2, 3, 4)) for n in range(5)] + [result("i5", "m2", False, "empty patch")]
    for out, rows in ((tmp_path / "a", a), (tmp_path / "b", b)):
        write_outputs(out, Report(models=[rows[0].model], results=rows, per_model=summarize(rows)))
    predictions = [json.loads(line) for line in (tmp_path / "b" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6 and set(predictions[0]) == {"instance_id", "model_name_or_path", "model_patch"}
    (summary,) = load_report(tmp_path / "b").per_model
    assert (summary.resolved, summary.resolved_pct, summary.empty_pct) == (4, 66.7, 16.7)
    assert summary.resolved_ci95[0] < 66.7 < summary.resolved_ci95[1]
    assert bootstrap_ci([True] * 5) == (100.0, 100.0)

    c = compare(load_report(tmp_path / "a"), load_report(tmp_path / "b"))
    assert (c.both, c.only_a, c.only_b, c.delta_pct) == (["i1", "i2"], ["i0"], ["i3", "i4"], 16.7)
    assert main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b" / "report.json")]) == 0
    assert "by A only: 1, by B only: 2" in capsys.readouterr().out
    assert main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
    assert "cannot read the report" in capsys.readouterr().err


# --- the full cycle ------------------------------------------------------------------------------


@pytest.mark.bwrap
async def test_a_wrong_fix_is_unresolved_and_an_empty_answer_is_an_empty_patch(tmp_path, calc, fake_ollama):
    repos_dir, instance = calc
    fake_ollama.pull(GEN, DISC)
    # a wrong fix, an empty answer, an edit whose search text is not in the file
    fake_ollama.queue("generator", WRONG_FIX, NO_CHANGE, calc_update("    return x - y", "    return x + y"))
    fake_ollama.always("discriminator", GOOD_RUBRIC)
    fake_ollama.always("agitator", {"guidance": "try again"})
    others = [instance.model_copy(update={"instance_id": f"acme__calc-{n}"}) for n in (2, 3)]
    run = SwebenchRun(settings_for(tmp_path, fake_ollama.host), Repos(repos_dir, tmp_path / "mirrors"), tmp_path / "out",
                      llm=fake_ollama.llm(), progress=lambda line: None)

    report = await run.run([instance, *others], [GEN])

    wrong, empty, malformed = report.results
    assert (wrong.status, wrong.resolved, wrong.approved) == ("unresolved", False, False)
    assert "a * b" in wrong.model_patch and "tests/test_hidden.py::test_add_negative" in wrong.fail_to_pass_failed
    assert (empty.status, empty.model_patch, empty.iterations) == ("empty patch", "", 1)
    assert wrong.tokens > 0 and wrong.changed_lines_in_prompt is True  # calc.py is small: shown whole
    assert (malformed.status, malformed.model_patch) == ("malformed edits", "")
    (summary,) = report.per_model
    assert (summary.resolved, summary.empty_pct, summary.malformed_pct) == (0, 33.3, 33.3)
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [(p["instance_id"], p["model_name_or_path"]) for p in predictions] == [
        ("acme__calc-1", GEN), ("acme__calc-2", GEN), ("acme__calc-3", GEN)]


@pytest.mark.bwrap
def test_the_cli_runs_the_oracle_writes_predictions_and_resumes(tmp_path, calc, monkeypatch, capsys):
    repos_dir, instance = calc
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AURA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "bwrap")
    write_instances(tmp_path / "i.jsonl", [instance, instance.model_copy(update={"instance_id": "acme__calc-2"})])
    argv = ["eval", "swebench", str(tmp_path / "i.jsonl"), "--repos", str(repos_dir), "--out", str(tmp_path / "out"),
            "--oracle", "--jobs", "2"]

    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "[2/2]" in captured.err and "oracle: resolved 2/2 = 100.0 %" in captured.out
    report = load_report(tmp_path / "out")
    assert all(r.status == "resolved" and r.approved and r.changed_lines_in_prompt for r in report.results)
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [p["model_name_or_path"] for p in predictions] == [ORACLE, ORACLE]
    assert "+    return a + b" in predictions[0]["model_patch"]

    # a run killed before acme__calc-2 finished: only that one runs again
    (tmp_path / "out" / "results" / "oracle" / "acme__calc-2.json").unlink()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "resuming: 1 of 2 already done" in err and "start acme__calc-1" not in err and "[1/1] acme__calc-2" in err
    assert len(load_report(tmp_path / "out").results) == 2

    assert main(["eval", "swebench", str(tmp_path / "i.jsonl"), "--repos", str(tmp_path), "--out", str(tmp_path / "o2"),
                 "--oracle"]) == 2
    assert "instance acme__calc-1: no repository acme/calc" in capsys.readouterr().err


REAL_CI = ["hukkin__tomli-8b962e1", "more-itertools__more-itertools-958990e", "tkem__cachetools-57d2e48"]


@pytest.mark.bwrap
@pytest.mark.slow
async def test_the_oracle_resolves_three_real_instances_through_the_full_cycle(tmp_path):
    """Issue 9's real tasks: with the known fix as the answer the cycle approves, the hidden tests pass,
    and the first generator prompt shows every base line the fix changes."""
    instances = load_instances(shipped("real"), only=REAL_CI)
    run = SwebenchRun(settings_for(tmp_path), Repos(REALREPOS, tmp_path / "mirrors"), tmp_path / "out",
                      progress=lambda line: None)

    report = await run.run(instances, [ORACLE])

    rows = [(r.instance_id, r.status, r.approved, r.changed_lines_in_prompt) for r in report.results]
    assert rows == [(i, "resolved", True, True) for i in REAL_CI]


@pytest.mark.bwrap
def test_the_shipped_toys_run_from_their_shipped_bundles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AURA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AURA_SANDBOX_BACKEND", "bwrap")
    assert main(["eval", "swebench", "toys", "--out", str(tmp_path / "out"), "--oracle", "--instance", "toy-leapyear"]) == 0
    (row,) = load_report(tmp_path / "out").results
    assert (row.instance_id, row.status, row.approved, row.changed_lines_in_prompt) == ("toy-leapyear", "resolved", True, True)
