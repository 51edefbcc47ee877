"""Ruby: Bundler for the dependencies, RSpec (with its JSON report) and minitest (its text output).

Test ids: RSpec's `spec/file_spec.rb::Full description` (its `file:line` and `file[1:2]` ids move when
examples are added above), minitest's `Class#test_name`. A file that fails to load is a collection error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sandbox.languages.junit import REPORT_ENV
from sandbox.parsers import trim_traceback
from sandbox.plans import CheckSpec, Plan
from sandbox.reports import FailingTest, TestCounts

BUNDLE_PATH = "/opt/aura-env/bundle"
# minitest's files, loaded in one process (what `rake test` does without needing a Rakefile)
LOAD_TESTS = 'Dir.glob("test/**/{*_test,test_*}.rb").sort.each { |f| require File.expand_path(f) }'


# a workflow's `run:` line that runs tests: rake, rspec, or ruby with a load path
_TEST_RUN = re.compile(r"^\s*(?:-\s*)?run:[ \t|]*(?:\n\s*)?[^\n]*\b(?:rake|rspec|ruby\s+-I)", re.M)


def ci_uses_bundler(repo_dir: Path) -> bool:
    """Whether the project's CI installs the Gemfile for its tests: yes, unless a workflow runs the tests
    without Bundler (no `bundle ...`, no setup-ruby `bundler-cache`), as ruby/rake's does (`gem install
    test-unit`, then `ruby -Ilib exe/rake`): its Gemfile's development gems (rubocop...) are not installed."""
    for workflow in sorted((repo_dir / ".github" / "workflows").glob("*.y*ml")):
        text = workflow.read_text(encoding="utf-8", errors="replace")
        if _TEST_RUN.search(text) and "bundle" not in text:
            return False
    return True


def has_specs(repo_dir: Path) -> bool:
    return any((repo_dir / "spec").rglob("*_spec.rb"))


def has_minitests(repo_dir: Path) -> bool:
    return any((repo_dir / "test").rglob("*_test.rb")) or any((repo_dir / "test").rglob("test_*.rb"))


def ruby_plan(repo_dir: Path) -> Plan:
    bundle = (repo_dir / "Gemfile").is_file() and ci_uses_bundler(repo_dir)
    prefix = ["bundle", "exec"] if bundle else []
    checks = []
    if has_specs(repo_dir):
        rspec = " ".join([*prefix, "rspec", "--format", "progress", "--format", "json", "--out", f'"${REPORT_ENV}"'])
        checks.append(CheckSpec(name="tests", command=["sh", "-c", f"exec {rspec}"], parser="rspec"))
    if has_minitests(repo_dir):
        checks.append(CheckSpec(name="minitest" if checks else "tests", parser="minitest",
                                command=[*prefix, "ruby", "-Ilib", "-Itest", "-e", LOAD_TESTS]))
    if not checks:
        checks.append(CheckSpec(name="tests", command=[*prefix, "rake", "test"], parser="minitest"))
    if not bundle:
        return Plan(language="ruby", checks=checks)
    return Plan(language="ruby", setup=[["bundle", "install"]], checks=checks, env={"BUNDLE_PATH": BUNDLE_PATH})


# --- RSpec ------------------------------------------------------------------------------------------------

_RSPEC_SUMMARY = re.compile(r"^(\d+) examples?, (\d+) failures?(?:, (\d+) pending)?(?:, (\d+) errors? occurred)?", re.M)
_RSPEC_LOAD = re.compile(r"An error occurred while loading (?:\./)?(\S+?)\.?$", re.M)
_LIBRARY_LINE = re.compile(r"/(gems|rubygems-integration|lib/ruby)/")


def parse_rspec(report: bytes | None, output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing examples from RSpec's JSON report, else from its summary line; a spec file that
    does not load is a collection error."""
    counts, failing = TestCounts(), []
    data = json.loads(report) if report else None
    if isinstance(data, dict) and isinstance(data.get("examples"), list):
        for example in data["examples"]:
            status = example.get("status")
            if status == "passed":
                counts.passed += 1
            elif status == "pending":
                counts.skipped += 1
            else:
                counts.failed += 1
                failing.append(_rspec_failure(example))
        loads = "\n".join(m for m in data.get("messages", []) if isinstance(m, str))
        outside = int((data.get("summary") or {}).get("errors_outside_of_examples_count") or 0)
    elif m := _RSPEC_SUMMARY.search(output):
        counts.failed, counts.skipped = int(m.group(2)), int(m.group(3) or 0)
        counts.passed = int(m.group(1)) - counts.failed - counts.skipped
        loads, outside = output, int(m.group(4) or 0)
    else:
        return None, []
    files = _RSPEC_LOAD.findall(loads)
    counts.errors += max(outside, len(files))
    failing += [FailingTest(test_id=f, message="collection failure", traceback=trim_traceback(loads)) for f in files]
    return counts, failing


def _rspec_failure(example: dict) -> FailingTest:
    path = str(example.get("file_path", "")).removeprefix("./")
    exception = example.get("exception") or {}
    message = str(exception.get("message", "")).strip()
    backtrace = [l for l in exception.get("backtrace") or [] if not _LIBRARY_LINE.search(l)]
    text = "\n".join([f"{exception.get('class', '')}: {message}", *backtrace])
    return FailingTest(test_id=f"{path}::{example.get('full_description', '')}",
                       message=message.splitlines()[0] if message else "", traceback=trim_traceback(text))


# --- minitest ---------------------------------------------------------------------------------------------

_MINITEST_SUMMARY = re.compile(r"^(\d+) runs, \d+ assertions, (\d+) failures, (\d+) errors, (\d+) skips", re.M)
_MINITEST_PROBLEM = re.compile(r"^\s*\d+\) (Failure|Error):\n(\S+?#\S+?)(?: \[([^\n]*)\])?:\n(.*?)(?=^\s*\d+\) (?:Failure|Error):|"
                               r"^\d+ runs, |\Z)", re.M | re.S)
_RUBY_LOAD_ERROR = re.compile(r"^.*\((\w*(?:Error|Exception))\)$", re.M)
_TEST_FILE = re.compile(r"from (?:/workspace/)?(test/\S+?\.rb):\d+")


_TESTUNIT_SUMMARY = re.compile(r"^(\d+) tests, \d+ assertions, (\d+) failures, (\d+) errors, (\d+) pendings, "
                               r"(\d+) omissions", re.MULTILINE)
_TESTUNIT_PROBLEM = re.compile(r"^(Failure|Error): (\w+[?!]?)\(([\w:]+)\)(?::? ?([^\n]*))\n(.*?)(?=^={20,}$|\Z)",
                               re.MULTILINE | re.DOTALL)


def parse_testunit(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """test-unit's summary (`606 tests, ... 0 pendings, 1 omissions`) and its Failure and Error blocks, ids
    `Class#test_name` as minitest's: `ruby -Ilib -Itest` runs a project's test-unit files (ruby/rake) too."""
    summaries = _TESTUNIT_SUMMARY.findall(output)
    if not summaries:
        return None, []
    counts = TestCounts()
    for tests, failures, errors, pendings, omissions in summaries:
        counts.failed += int(failures)
        counts.errors += int(errors)
        counts.skipped += int(pendings) + int(omissions)
        counts.passed += int(tests) - int(failures) - int(errors) - int(pendings) - int(omissions)
    failing = [FailingTest(test_id=f"{cls}#{name}", message=(message or kind).strip(),
                           traceback=trim_traceback(text.strip()))
               for kind, name, cls, message, text in _TESTUNIT_PROBLEM.findall(output)]
    return counts, failing


def parse_minitest(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts from minitest's summary lines (one per process), failing tests (`Class#test_name`) from its
    Failure and Error blocks, else test-unit's; a test file that does not load is a collection error."""
    summaries = _MINITEST_SUMMARY.findall(output)
    if not summaries and _TESTUNIT_SUMMARY.search(output):
        return parse_testunit(output)
    if not summaries:
        if m := _RUBY_LOAD_ERROR.search(output):
            where = _TEST_FILE.search(output, m.end())
            return TestCounts(errors=1), [FailingTest(test_id=where.group(1) if where else "ruby",
                                                      message=f"collection failure: {m.group(1)}",
                                                      traceback=trim_traceback(output[m.start():]))]
        return None, []
    counts = TestCounts()
    for runs, failures, errors, skips in summaries:
        counts.failed += int(failures)
        counts.errors += int(errors)
        counts.skipped += int(skips)
        counts.passed += int(runs) - int(failures) - int(errors) - int(skips)
    failing = []
    for kind, test_id, where, text in _MINITEST_PROBLEM.findall(output):
        lines = [l for l in text.strip().splitlines() if l.strip()]
        failing.append(FailingTest(test_id=test_id, message=lines[0].strip() if lines else kind,
                                   traceback=trim_traceback(f"{where}\n{text}" if where else text)))
    return counts, failing
