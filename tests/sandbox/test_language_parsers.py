"""The Rust, Java, Ruby and PHP report parsers on output captured from the real tools (tests/sandbox/data),
and the plans detected for their projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import CheckStatus, CommandResult, TestCounts
from sandbox.languages.java import parse_java_reports
from sandbox.languages.php import parse_phpunit
from sandbox.languages.ruby import parse_minitest, parse_rspec
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


def test_cargo_doc_tests_of_one_item_are_numbered_in_file_order():
    # a module's docs have no item name (fnv's lib.rs); libtest sorts the names as text
    output = ("   Doc-tests fnv\n\nrunning 3 tests\ntest lib.rs - (line 100) ... FAILED\ntest lib.rs - (line 51) ... ok\n"
              "test lib.rs - Fnv (line 7) ... FAILED\n\n"
              "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n")
    assert [f.test_id for f in parse_cargo_test(output)[1]] == ["fnv::doc::lib.rs - #2", "fnv::doc::lib.rs - Fnv"]


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
    no_deps = write_tree(tmp_path / "n", {"Cargo.toml": '[package]\nname = "n"\n\n[features]\nstd = []\n'})
    assert detect_plan(no_deps).setup == []
    target = write_tree(tmp_path / "t", {"Cargo.toml": '[package]\nname = "t"\n\n'
                                                      '[target.\'cfg(target_os = "linux")\'.dependencies]\nlibc = "0.2"\n'})
    assert detect_plan(target).setup == [["cargo", "fetch"]]
    # a Python project building a Rust extension stays a Python project
    write_tree(repo, {"pyproject.toml": "[project]\nname = 'x'\n"})
    assert detect_plan(repo).language == "python"


def _surefire_merged() -> bytes:
    # what the Java check command leaves: the per-class reports under one root, XML declarations removed
    report = (DATA / "surefire-TEST-calc.CalcTest.xml").read_text().split("?>", 1)[1]
    return f"<testsuites>{report}{report.replace('calc.CalcTest', 'calc.OtherTest')}</testsuites>".encode()


def test_surefire_reports():
    counts, failing = parse_java_reports(_surefire_merged(), "")
    assert counts == TestCounts(passed=2, failed=2, errors=2, skipped=2)
    assert [f.test_id for f in failing] == ["calc.CalcTest#boom", "calc.CalcTest#wrong", "calc.OtherTest#boom",
                                            "calc.OtherTest#wrong"]
    assert failing[1].message == "add is off expected:<3> but was:<2>"
    assert "at calc.CalcTest.wrong(CalcTest.java:16)" in failing[1].traceback


def test_java_compile_error_is_a_build_error():
    output = ("[INFO] --- maven-compiler-plugin:3.10.1:compile (default-compile) @ calc ---\n"
              "[ERROR] COMPILATION ERROR : \n[ERROR] /workspace/src/main/java/calc/Calc.java:[3,20] reached end of file while parsing\n"
              "[INFO] BUILD FAILURE\n")
    check = judge(CheckSpec(name="tests", command=["sh"], parser="surefire"),
                  CommandResult(argv=["sh"], exit_code=1, output=output), b"<testsuites>\n</testsuites>\n")
    assert check.status == CheckStatus.ERROR and check.tests == TestCounts(errors=1)
    assert "reached end of file" in check.failing_tests[0].traceback
    assert pass_rate([check]) == (0.0, "build failed in compile")
    gradle = "> Task :compileTestJava FAILED\nCalcTest.java:3: error: ';' expected\n"
    assert parse_java_reports(None, gradle)[1][0].test_id == "compileTestJava"


def test_phpunit_junit_log():
    counts, failing = parse_phpunit((DATA / "phpunit-9.6-junit.xml").read_bytes(), "")
    assert counts == TestCounts(passed=2, failed=2, errors=1, skipped=1)
    assert [f.test_id for f in failing] == ["Calc\\Tests\\CalcTest::testWrong", "Calc\\Tests\\CalcTest::testBoom",
                                            'Calc\\Tests\\CalcTest::testPairs with data set "off"']
    assert failing[0].message == "add is off" and failing[1].message == "RuntimeException: boom"
    assert "/workspace/tests/CalcTest.php:17" in failing[0].traceback


def test_phpunit_summary_and_fatal_errors():
    assert parse_phpunit(None, (DATA / "phpunit-9.6-output.txt").read_text())[0] == \
        TestCounts(passed=2, failed=2, errors=1, skipped=1)
    assert parse_phpunit(None, "PHPUnit 9.6.7\n\n...   3 / 3 (100%)\n\nOK (3 tests, 3 assertions)\n")[0] == TestCounts(passed=3)
    fatal = "PHP Parse error:  syntax error, unexpected token \"}\" in /workspace/tests/CalcTest.php on line 12\n"
    check = judge(CheckSpec(name="tests", command=["sh"], parser="phpunit"), CommandResult(argv=["sh"], exit_code=255, output=fatal))
    assert check.status == CheckStatus.ERROR and check.failing_tests[0].test_id == "tests/CalcTest.php"


def test_rspec_json_report():
    counts, failing = parse_rspec((DATA / "rspec-3.12.json").read_bytes(), "")
    assert counts == TestCounts(passed=1, failed=2, skipped=1)
    assert [f.test_id for f in failing] == ["spec/calc_spec.rb::Calc.add is wrong", "spec/calc_spec.rb::Calc.add raises"]
    assert "got: 2" in failing[0].traceback and "/workspace/spec/calc_spec.rb:10" in failing[0].traceback
    assert "rspec-core" not in failing[0].traceback  # the library's frames are left out
    # without the report, the summary line gives the counts
    assert parse_rspec(None, (DATA / "rspec-3.12-output.txt").read_text())[0] == counts


@pytest.mark.parametrize("report", [True, False])
def test_rspec_load_error_is_a_collection_error(report):
    data = (DATA / "rspec-3.12-load-error.json").read_bytes() if report else None
    output = (DATA / "rspec-3.12-load-error-output.txt").read_text()
    check = judge(CheckSpec(name="tests", command=["sh"], parser="rspec"), CommandResult(argv=["sh"], exit_code=1, output=output), data)
    assert check.tests == TestCounts(errors=1) and check.status == CheckStatus.ERROR
    assert "syntax error" in check.failing_tests[0].traceback
    assert pass_rate([check]) == (0.0, "collection error in spec/calc_spec.rb")


def test_minitest_output():
    counts, failing = parse_minitest((DATA / "minitest-5.17-output.txt").read_text())
    assert counts == TestCounts(passed=1, failed=1, errors=1, skipped=1)
    assert [(f.test_id, f.message) for f in failing] == [("CalcTest#test_boom", "RuntimeError: boom"),
                                                         ("CalcTest#test_wrong", "add is off.")]
    assert "/workspace/test/calc_test.rb:10" in failing[1].traceback and "Actual: 2" in failing[1].traceback


def test_test_unit_output_read_by_the_minitest_parser():
    """test-unit 3.5 (Ruby 3.1's bundled gem, which ruby/rake's tests use): its summary and blocks."""
    counts, failing = parse_minitest((DATA / "test-unit-3.5-output.txt").read_text())
    assert counts == TestCounts(passed=1, failed=1, errors=1, skipped=1)  # the omission is skipped
    assert [(f.test_id, f.message) for f in failing] == [("TestX#test_a", "Failure"), ("TestX#test_b", "RuntimeError: boom")]
    assert "<1> expected but was" in failing[0].traceback and "test_x.rb:4" in failing[1].traceback


def test_minitest_load_error_is_a_collection_error():
    output = (DATA / "minitest-5.17-load-error-output.txt").read_text()
    check = judge(CheckSpec(name="tests", command=["ruby"], parser="minitest"), CommandResult(argv=["ruby"], exit_code=1, output=output))
    assert check.status == CheckStatus.ERROR
    assert pass_rate([check]) == (0.0, "collection error in test/calc_test.rb")


@pytest.mark.parametrize(("files", "language", "parser"), [
    ({"pom.xml": "<project/>", "package.json": "{}"}, "java", "surefire"),
    ({"build.gradle.kts": "", "gradlew": ""}, "java", "surefire"),
    ({"composer.json": '{"require-dev": {"phpunit/phpunit": "^10"}}', "package.json": "{}"}, "php", "phpunit"),
    ({"phpunit.xml.dist": "<phpunit/>"}, "php", "phpunit"),
    ({"Gemfile": "", "spec/a_spec.rb": "", "test/a_test.rb": ""}, "ruby", "rspec"),
    ({"calc.gemspec": "", "test/test_calc.rb": ""}, "ruby", "minitest"),
])
def test_detects_the_language(tmp_path, files, language, parser):
    plan = detect_plan(write_tree(tmp_path / "repo", files))
    assert plan.language == language and plan.checks[0].parser == parser


def test_plans_of_other_languages(tmp_path):
    php = detect_plan(write_tree(tmp_path / "php", {"composer.json": '{"require-dev": {"phpunit/phpunit": "^10"}}'}))
    assert php.setup == [["composer", "install", "--no-interaction", "--no-progress", "--prefer-dist"]]
    assert php.env_links == ["vendor"] and "vendor/bin/phpunit" in php.checks[0].command[-1]
    ruby = detect_plan(write_tree(tmp_path / "rb", {"Gemfile": "", "spec/a_spec.rb": "", "test/a_test.rb": ""}))
    assert ruby.setup == [["bundle", "install"]] and [c.name for c in ruby.checks] == ["tests", "minitest"]
    assert ruby.checks[1].command[:3] == ["bundle", "exec", "ruby"]
    gradle = detect_plan(write_tree(tmp_path / "gradle", {"build.gradle": "", "gradlew": ""}))
    assert gradle.setup_env == {"GRADLE_USER_HOME": "/opt/aura-env/gradle"} and "./gradlew --offline" in gradle.checks[0].command[-1]


def test_a_ruby_project_is_bundled_unless_its_ci_tests_without_bundler(tmp_path):
    files = {"Gemfile": "gem 'rubocop'", "test/test_calc.rb": ""}
    without = {".github/workflows/test.yml": "steps:\n- run: gem install test-unit\n- name: Run test\n  run: ruby -Ilib exe/rake\n",
               ".github/workflows/lint.yml": "steps:\n- run: bundle exec rubocop\n"}
    plan = detect_plan(write_tree(tmp_path / "rake", {**files, **without}))
    assert plan.setup == [] and plan.checks[0].command[:2] == ["ruby", "-Ilib"]
    cached = {".github/workflows/ci.yml": "steps:\n- uses: ruby/setup-ruby@v1\n  with: {bundler-cache: true}\n"
                                          "- run: rake test\n"}
    for name, extra in (("cached", cached), ("no-ci", {})):
        plan = detect_plan(write_tree(tmp_path / name, {**files, **extra}))
        assert plan.setup == [["bundle", "install"]] and plan.checks[0].command[:2] == ["bundle", "exec"], name


def test_maven_totals_without_reports():
    """A repository's own Maven command (no merged report): Surefire's per-module totals."""
    output = ("[ERROR] Tests run: 4, Failures: 1, Errors: 1, Skipped: 1, Time elapsed: 0.029 s <<< FAILURE! - in calc.CalcTest\n"
              "[ERROR] Tests run: 4, Failures: 1, Errors: 1, Skipped: 1\n[INFO] Tests run: 3, Failures: 0, Errors: 0, Skipped: 0\n")
    assert parse_java_reports(None, output) == (TestCounts(passed=4, failed=1, errors=1, skipped=1), [])


def test_parsers_guessed_for_configured_commands(tmp_path):
    repo = write_tree(tmp_path / "r", {".github/aura-sicd.yml": (
        "checks:\n  - {name: a, run: cargo test --workspace}\n  - {name: b, run: ./mvnw -B verify}\n"
        "  - {name: c, run: vendor/bin/phpunit}\n  - {name: d, run: bundle exec rspec}\n")})
    assert [c.parser for c in detect_plan(repo).checks] == ["cargo", "surefire", "phpunit", "rspec"]
