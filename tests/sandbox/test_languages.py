"""The JavaScript/TypeScript and Go plans, run for real with bubblewrap (the host's node and go)."""

from __future__ import annotations

import shutil

import pytest

from sandbox import CheckStatus, SetupError, open_sandbox
from sandbox.bwrap import _host_go_version, _version_key

from .conftest import settings_for, write_tree

NODE_TESTS = {
    "package.json": '{"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}',
    "calc.js": "exports.add = (a, b) => a + b;\n",
    "test/calc.test.js": (
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { add } = require('../calc');\n"
        "test('adds', () => { assert.strictEqual(add(1, 2), 3); });\n"
        "test('wrong', () => { assert.strictEqual(add(1, 1), 3); });\n"
    ),
}
NODE_HANGING = {
    "package.json": '{"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}',
    ".github/aura-sicd.yml": "test_timeout_s: 2\n",
    "test/hang.test.js": (
        "const test = require('node:test');\n"
        "test('never settles', () => new Promise(() => { setInterval(() => {}, 1000); }));\n"
        "test('fine', () => {});\n"
    ),
}
GO_TESTS = {
    "go.mod": "module example.com/calc\n\ngo 1.19\n",
    "calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n",
    "calc_test.go": (
        'package calc\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal("bad")\n\t}\n}\n\n'
        'func TestWrong(t *testing.T) {\n\tif Add(1, 1) != 3 {\n\t\tt.Errorf("Add(1, 1) = %d, want 3", Add(1, 1))\n\t}\n}\n'
    ),
}


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed on this host")


async def test_javascript_plan(bwrap_settings, tmp_path):
    _need("npm")
    repo = write_tree(tmp_path / "js", NODE_TESTS)
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.FAILED
    assert tests.tests.passed == 1 and tests.tests.failed == 1
    assert [f.test_id for f in tests.failing_tests] == ["wrong"]
    assert report.pass_rate == 0.5


async def test_node_test_runner_gets_the_per_test_limit(bwrap_settings, tmp_path):
    _need("node")
    repo = write_tree(tmp_path / "js", NODE_HANGING)
    async with open_sandbox(settings_for("bwrap"), repo) as box:
        assert box.plan.checks[-1].command == ["node", "--test-timeout={test_timeout_ms}", "--test"]
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.duration_s < 30, tests.output  # the check limit is 60 s here
    # node 20 applies the limit to each test file's process too: the file that hangs fails with the rest of it
    assert tests.status == CheckStatus.FAILED and tests.tests.failed == 1, tests.output
    assert [f.test_id for f in tests.failing_tests] == ["/workspace/test/hang.test.js"]
    assert "test timed out after 2000ms" in tests.failing_tests[0].message


async def test_go_plan(bwrap_settings, tmp_path):
    _need("go")
    repo = write_tree(tmp_path / "go", GO_TESTS)
    broken = write_tree(tmp_path / "broken", {**GO_TESTS, "calc.go": "package calc\n\nfunc Add(a, b int) int { return a + }\n"})
    async with open_sandbox(settings_for("bwrap", memory_mb=2048, pids=256), repo) as box:
        report = await box.check(repo)
        broken_report = await box.check(broken)
    assert report.check("vet").status == CheckStatus.PASSED
    assert report.check("tests").tests.model_dump() == {"passed": 1, "failed": 1, "errors": 0, "skipped": 0}
    assert report.check("tests").failing_tests[0].test_id == "example.com/calc.TestWrong"
    assert report.pass_rate == 0.5
    assert broken_report.check("tests").status == CheckStatus.ERROR
    assert broken_report.pass_rate == 0.0 and broken_report.pass_rate_reason == "build failed in example.com/calc"


async def test_a_go_mod_newer_than_the_hosts_go_is_a_setup_error_naming_both(bwrap_settings, tmp_path):
    _need("go")
    have = _host_go_version()
    newer = f"1.{_version_key(have)[1] + 2}.0"  # two minor versions past the host's
    repo = write_tree(tmp_path / "go", {**GO_TESTS, "go.mod": f"module example.com/calc\n\ngo {newer}\n"})
    with pytest.raises(SetupError, match=rf"go.mod asks for go {newer} or newer.* is go {have}"):
        async with open_sandbox(settings_for("bwrap"), repo):
            pass
