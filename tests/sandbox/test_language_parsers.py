"""The Rust, Java, Ruby and PHP report parsers on output captured from the real tools (tests/sandbox/data),
and the plans detected for their projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import CheckStatus, CommandResult, TestCounts
from sandbox.languages.rust import cargo_unfinished_tests, parse_cargo_test
from sandbox.plans import CheckSpec, detect_plan
from sandbox.runner import judge, pass_rate

from .conftest import write_tree

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("version", ["1.95", "1.65"])
def test_cargo_test_output(version):
    counts, failing = parse_cargo_test((DATA / f"cargo-test-{version}.txt").read_text())
    assert counts == TestCounts(passed=4, failed=2, skipped=1)  # 3 unit tests, 1 doc test, 1 ignored
    assert [f.test_id for f in failing] == ["rcalc::ops::tests::wrong", "api::api_panics"]
    assert "double is off" in failing[0].traceback
    assert failing[1].message == "boom"


@pytest.mark.parametrize("version", ["1.95", "1.65"])
def test_cargo_build_failure_is_an_error(version):
    output = (DATA / f"cargo-test-build-failed-{version}.txt").read_text()
    counts, failing = parse_cargo_test(output)
    assert counts == TestCounts(errors=1)
    assert failing[0].test_id == "rcalc" and "expected expression" in failing[0].traceback
    check = judge(CheckSpec(name="tests", command=["cargo", "test"], parser="cargo"),
                  CommandResult(argv=["cargo"], exit_code=101, output=output))
    assert check.status == CheckStatus.ERROR
    assert pass_rate([check]) == (0.0, "build failed in rcalc")


def test_cargo_doc_test_ids_leave_out_the_line():
    output = ("   Doc-tests calc\n\nrunning 1 test\ntest src/lib.rs - add (line 3) ... FAILED\n\nfailures:\n\n"
              "---- src/lib.rs - add (line 3) stdout ----\nTest executable failed.\n\nfailures:\n"
              "    src/lib.rs - add (line 3)\n\n"
              "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n")
    counts, failing = parse_cargo_test(output)
    assert counts == TestCounts(failed=1)
    assert failing[0].test_id == "calc::doc::src/lib.rs - add"
    assert "Test executable failed." in failing[0].traceback


def test_cargo_names_the_test_that_hung():
    output = ("     Running unittests src/lib.rs (target/debug/deps/calc-0123456789abcdef)\n\nrunning 2 tests\n"
              "test quick ... ok\ntest net::waits has been running for over 60 seconds\n")
    assert cargo_unfinished_tests(output) == ["calc::net::waits"]
    assert parse_cargo_test(output) == (None, [])  # no result line: no counts


def test_detects_rust(tmp_path):
    repo = write_tree(tmp_path / "r", {"Cargo.toml": '[package]\nname = "x"\n\n[dev-dependencies]\nserde = "1"\n'})
    plan = detect_plan(repo)
    assert plan.language == "rust" and plan.setup == [["cargo", "fetch"]]
    assert plan.checks[0].command == ["cargo", "test", "--offline", "--no-fail-fast"]
    assert plan.env["CARGO_HOME"] == "/opt/aura-env/cargo" and "Cargo.toml" in plan.dependency_files
    # a Python project building a Rust extension stays a Python project
    write_tree(repo, {"pyproject.toml": "[project]\nname = 'x'\n"})
    assert detect_plan(repo).language == "python"
