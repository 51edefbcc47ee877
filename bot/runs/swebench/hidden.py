"""The hidden tests: the instance's `test_patch` applied on base + the model's patch, its tests run in the
sandbox, and SWE-bench's rule applied to the outcome.

As in SWE-bench's harness, the test files the model touched are put back as they were at base before
the test patch goes on; the test files the patch touches (and those the instance's test ids name) are
run; a test passes when it PASSED (or XFAIL), fails when it FAILED, ERRORed or did not run at all, and a
SKIPPED test counts neither way. Resolved iff every FAIL_TO_PASS test and every PASS_TO_PASS test passes.

Python tests run under pytest (ids are pytest node ids, read from its `-r` summary lines); Go tests under
`go test -json` (ids are test names, `TestX` or `TestX/sub`).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from pydantic import BaseModel, Field

from bot.runs.swebench.instances import Instance, patch_files
from bot.runs.swebench.repos import reset_to
from bot.workspace import GitError, run_git
from sandbox import SandboxSettings, open_sandbox
from sandbox.parsers import go_events

PASSED, FAILED, ERROR, SKIPPED, XFAIL, XPASS, MISSING = "PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS", "MISSING"
PASSING = (PASSED, XFAIL)
FAILING = (FAILED, ERROR, MISSING, XPASS)
OUTPUT_LIMIT = 8_000_000  # the summary of a large test file must not be cut
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S.*?)(?: - .*)?$")


class PatchError(Exception):
    """A patch that does not apply on the base commit; `model` tells the model's patch from the test patch."""

    def __init__(self, message: str, *, model: bool) -> None:
        super().__init__(message)
        self.model = model


class HiddenRun(BaseModel):
    statuses: dict[str, str] = Field(default_factory=dict)  # test id -> PASSED / FAILED / ERROR / SKIPPED / ...
    exit_code: int | None = None
    timed_out: bool = False
    output_tail: str = ""  # the end of the runner's output, for a report that explains a failure
    duration_s: float = 0.0


class HiddenResult(BaseModel):
    resolved: bool = False
    patch_applied: bool = True
    error: str | None = None  # the tests could not be run (test patch, sandbox)
    fail_to_pass_failed: list[str] = Field(default_factory=list)
    pass_to_pass_failed: list[str] = Field(default_factory=list)
    statuses: dict[str, str] = Field(default_factory=dict)  # the instance's test ids only
    run: HiddenRun | None = None


def parse_pytest_report(output: str) -> dict[str, str]:
    """Test id -> status from pytest's short summary (`-r fEsxXp`); SKIPPED lines name no test id."""
    statuses: dict[str, str] = {}
    for line in output.splitlines():
        match = _SUMMARY.match(line.rstrip())
        if match:
            statuses[match.group(2)] = match.group(1)
    return statuses


def parse_go_report(output: str) -> dict[str, str]:
    """Test name -> status from `go test -json` events (subtests keep their TestX/sub names)."""
    statuses: dict[str, str] = {}
    actions = {"pass": PASSED, "fail": FAILED, "skip": SKIPPED}
    for event in go_events(output):
        if event.get("Test") and event.get("Action") in actions:
            statuses[event["Test"]] = actions[event["Action"]]
    return statuses


def test_command(language: str, files: list[str], env: dict[str, str]) -> list[str]:
    if language == "go":
        prefix = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
        return [*prefix, "go", "test", "-json", "-count=1", "./..."]
    if language != "python":
        raise ValueError(f"hidden tests of a {language} project: only Python (pytest) and Go are supported")
    return ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=no", "-r", "fEsxXp",
            "-o", "addopts=", *files]


async def run_tests(settings: SandboxSettings, repo: Path, files: list[str]) -> HiddenRun:
    """Run `files`' tests (Python) or the module's (Go) on `repo` as it is, in a fresh sandbox."""
    settings = settings.model_copy(update={"output_limit": max(settings.output_limit, OUTPUT_LIMIT)})
    started = time.monotonic()
    async with open_sandbox(settings, repo) as box:
        argv = test_command(box.plan.language, files, box.plan.env)
        result = await box.run(argv)
    parse = parse_go_report if box.plan.language == "go" else parse_pytest_report
    return HiddenRun(statuses=parse(result.output), exit_code=result.exit_code, timed_out=result.timed_out,
                   output_tail=result.output[-3000:], duration_s=round(time.monotonic() - started, 3))


def apply_patch(repo: Path, patch: str, what: str, *, model: bool) -> None:
    if not patch.strip():
        return
    try:
        run_git(["apply", "--binary", "--whitespace=nowarn", "-"], repo, input=patch if patch.endswith("\n") else patch + "\n")
    except GitError as exc:
        raise PatchError(f"{what} does not apply: {exc.stderr.strip()[:500]}", model=model) from exc


def restore_from_base(repo: Path, base: str, paths: list[str]) -> None:
    """Put `paths` back as they are at base (removing those that base does not have)."""
    for path in paths:
        if run_git(["ls-tree", "--name-only", base, "--", path], repo).strip():
            run_git(["checkout", "--quiet", base, "--", path], repo)
        elif (repo / path).is_file():
            (repo / path).unlink()


def prepare_tree(repo: Path, instance: Instance, model_patch: str) -> None:
    """`repo` at base + the model's patch + the hidden test patch (raises PatchError naming which failed)."""
    reset_to(repo, instance.base_commit)
    apply_patch(repo, model_patch, "the model's patch", model=True)
    restore_from_base(repo, instance.base_commit, instance.test_files())
    apply_patch(repo, instance.test_patch, f"the test patch of {instance.instance_id}", model=False)


def test_modules(paths: list[str]) -> list[str]:
    """The Python files among `paths` (a test patch also carries data files, which pytest cannot run);
    none means the whole suite runs."""
    return [p for p in dict.fromkeys(paths) if p.endswith(".py")]


def files_to_run(instance: Instance) -> list[str]:
    named = [test_id.split("::", 1)[0] for test_id in [*instance.FAIL_TO_PASS, *instance.PASS_TO_PASS] if "::" in test_id]
    return test_modules([*instance.test_files(), *named])


def judge(instance: Instance, run: HiddenRun) -> HiddenResult:
    """SWE-bench's rule on one test run."""
    wanted = [*instance.FAIL_TO_PASS, *instance.PASS_TO_PASS]
    statuses = {test_id: run.statuses.get(test_id, MISSING) for test_id in wanted}
    f2p = [t for t in instance.FAIL_TO_PASS if statuses[t] in FAILING]
    p2p = [t for t in instance.PASS_TO_PASS if statuses[t] in FAILING]
    return HiddenResult(resolved=not f2p and not p2p, fail_to_pass_failed=f2p, pass_to_pass_failed=p2p,
                        statuses=statuses, run=run)


async def evaluate(settings: SandboxSettings, repo: Path, instance: Instance, model_patch: str) -> HiddenResult:
    """The hidden tests on base + `model_patch`, in the sandbox. A model patch that does not apply is
    unresolved; a test patch that does not apply is an error of the instance."""
    try:
        await asyncio.to_thread(prepare_tree, repo, instance, model_patch)
    except PatchError as exc:
        if exc.model:
            return HiddenResult(patch_applied=False, fail_to_pass_failed=list(instance.FAIL_TO_PASS))
        return HiddenResult(error=str(exc))
    run = await run_tests(settings, repo, [f for f in files_to_run(instance) if (repo / f).exists()])
    return judge(instance, run)


__all__ = [
    "HiddenResult",
    "HiddenRun",
    "PatchError",
    "evaluate",
    "judge",
    "parse_go_report",
    "parse_pytest_report",
    "patch_files",
    "prepare_tree",
    "run_tests",
]
