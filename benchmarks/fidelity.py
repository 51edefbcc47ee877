"""Fidelity: does the sandbox give each test the outcome the project's own CI gives it?

    .venv/bin/python benchmarks/fidelity.py [--backend bwrap|docker] [--only NAME ...] [--json FILE]
    .venv/bin/python benchmarks/fidelity.py --render FILE [--render FILE ...]   # tables of saved runs

For every project of benchmarks/fidelity_projects.json (bundles in tests/data/realrepos/), at its head:

Both clones are made as benchmarks/real_repos.py makes them, and get the project's `files` (what this
machine cannot download and a CI runner can, e.g. a licence text a build plugin fetches from GitHub).

- CI: a fresh clone, set up as the project's CI sets itself up (its own virtualenv, `npm ci`/`npm install`,
  the host's Go, Cargo and Ruby), then its test command as CI runs it, with a machine-readable report
  (`--junitxml`, `go test -json`, vitest's JSON, TAP, test-unit's verbose lines; bot/runs/testids.py).
  It runs outside any sandbox, in CI's environment (`CI=true`, a UTF-8 locale, no NO_COLOR/TERM=dumb).
- sandbox: another clone opened in the sandbox (its own setup from its plan), then
  * the same test command run in the sandbox's environment (`Box.run`): the outcome per test id, and
  * the sandbox's own check (`Box.check`): its test check's failing ids and counts.

Printed per project: the test ids CI reports, the share whose outcome the sandbox run equals
(agreement), whether the check's failing ids and passed count equal CI's, and each difference with
what it shows (a test not run, a status that differs, a setup that failed — with the output's end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_repos import clone  # noqa: E402
from bot.runs.testids import FAILED, PASSED, ReportError, parse  # noqa: E402
from sandbox import SandboxSettings, open_sandbox  # noqa: E402

BUNDLES = ROOT / "tests" / "data" / "realrepos"
PROJECTS = ROOT / "benchmarks" / "fidelity_projects.json"
MARKER = "=== aura-fidelity-report ==="
SANDBOX_REPORT = "/tmp/aura-fidelity-report"
OUTPUT_LIMIT = 8_000_000
GO_SUBTEST = re.compile(r"\.(Test|Example|Fuzz)\w*/")  # package.TestX/sub
FILE_FORMATS = ("junit",)  # formats read from $REPORT, besides specs that say report_file
CI_ENV = {"CI": "true", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "GITHUB_ACTIONS": "true"}
NOT_CI = ("NO_COLOR", "TERM", "FORCE_COLOR", "PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")


class Project(BaseModel):
    bundle: str
    language: str
    ci: str  # where the command comes from
    setup: str = ""
    test: str
    format: str
    report_file: bool = False
    # written into both clones before anything runs: what a CI runner downloads and this machine cannot
    files: dict[str, str] = Field(default_factory=dict)

    @property
    def reads_file(self) -> bool:
        return self.report_file or self.format in FILE_FORMATS


class Run(BaseModel):
    statuses: dict[str, str] = Field(default_factory=dict)
    exit_code: int | None = None
    error: str | None = None  # the run gave no outcomes: why
    tail: str = ""
    seconds: float = 0.0


class Fidelity(BaseModel):
    project: str
    language: str
    head: str = ""
    ci: Run = Field(default_factory=Run)
    sandbox: Run = Field(default_factory=Run)
    check_status: str = ""
    check_failing: list[str] = Field(default_factory=list)
    check_passed: int | None = None
    differences: list[str] = Field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        if not self.ci.statuses:
            return None
        same = sum(self.sandbox.statuses.get(t) == s for t, s in self.ci.statuses.items())
        return same / len(self.ci.statuses)

    @property
    def counted(self) -> dict[str, str]:
        """CI's outcomes at the check's granularity: Go's check counts top-level tests, not subtests."""
        if self.language == "go":
            return {t: s for t, s in self.ci.statuses.items() if not GO_SUBTEST.search(t)}
        return self.ci.statuses

    @property
    def check_agrees(self) -> bool:
        ci_failing = sorted(t for t, s in self.counted.items() if s == FAILED)
        ci_passed = sum(s == PASSED for s in self.counted.values())
        return sorted(self.check_failing) == ci_failing and self.check_passed == ci_passed


def add_files(project: Project, repo: Path) -> None:
    for rel, text in project.files.items():
        (repo / rel).write_text(text, encoding="utf-8")


def ci_environment(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_CI}
    env.update(CI_ENV)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def read_outcomes(project: Project, run: Run, output: str, report: str | None, root: str) -> Run:
    text = report if project.reads_file else output
    run.tail = output[-1500:]
    if not text or not text.strip():
        run.error = f"no report (exit {run.exit_code})"
        return run
    try:
        run.statuses = parse(project.format, text.strip(), root=root)
    except ReportError as exc:
        run.error = str(exc)
    if not run.statuses and not run.error:
        run.error = f"the report names no test (exit {run.exit_code})"
    return run


def run_ci(project: Project, repo: Path, work: Path, timeout: float) -> Run:
    """The project's setup and test command as its CI runs them, outside any sandbox."""
    started = time.monotonic()
    venv = work / "venvs" / project.bundle
    report = work / "reports" / f"{project.bundle}.out"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = ci_environment(venv) | {"REPORT": str(report)}
    add_files(project, repo)
    if project.language == "python":
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    commands = [c for c in (project.setup, project.test) if c]
    for i, command in enumerate(commands):
        command = command.format(pip=f"{venv}/bin/python -m pip -q", python=f"{venv}/bin/python")
        try:
            done = subprocess.run(["sh", "-c", command], cwd=repo, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Run(error=f"timed out after {timeout:.0f} s: {command}", seconds=time.monotonic() - started)
        if i < len(commands) - 1 and done.returncode != 0:
            return Run(exit_code=done.returncode, error=f"CI setup failed: {command}",
                       tail=done.stdout[-1500:], seconds=time.monotonic() - started)
    text = report.read_text(encoding="utf-8", errors="replace") if report.is_file() else None
    run = read_outcomes(project, Run(exit_code=done.returncode), done.stdout, text, str(repo))
    run.seconds = round(time.monotonic() - started, 1)
    return run


async def run_sandbox(project: Project, repo: Path, settings: SandboxSettings, result: Fidelity) -> None:
    """The sandbox's check, then the CI's test command in the sandbox's environment."""
    started = time.monotonic()
    test = project.test.format(pip="python -m pip", python="python")
    script = (f'export REPORT={SANDBOX_REPORT}; {test}; status=$?; echo "{MARKER}"; '
              f'cat "$REPORT" 2>/dev/null; exit $status')
    try:
        async with open_sandbox(settings, repo) as box:
            report = await box.check(repo)
            tests = next((c for c in report.checks if c.tests is not None), None) or report.check("tests")
            if tests is not None:
                result.check_status = tests.status.value
                result.check_failing = [f.test_id for f in tests.failing_tests]
                result.check_passed = tests.tests.passed if tests.tests else None
            await box.check(repo)  # a fresh workspace for the command
            done = await box.run(["sh", "-c", script])
    except Exception as exc:  # a sandbox that cannot set the project up is a figure too
        result.sandbox = Run(error=f"{type(exc).__name__}: {str(exc)[:400]}", seconds=time.monotonic() - started)
        return
    output, _, report_text = done.output.partition(MARKER)
    result.sandbox = read_outcomes(project, Run(exit_code=done.exit_code), output, report_text, "/workspace")
    result.sandbox.seconds = round(time.monotonic() - started, 1)


def differences(result: Fidelity) -> list[str]:
    ci, box = result.ci.statuses, result.sandbox.statuses
    if result.ci.error:
        return [f"CI run: {result.ci.error}"]
    if result.sandbox.error:
        return [f"sandbox: {result.sandbox.error}; output ends: {result.sandbox.tail[-600:]!r}"]
    found = [f"{t}: CI {s}, sandbox {box.get(t, 'not run')}" for t, s in ci.items() if box.get(t) != s]
    found += [f"{t}: only in the sandbox ({s})" for t, s in box.items() if t not in ci]
    if not result.check_agrees:
        ci_failing = {t for t, s in result.counted.items() if s == FAILED}
        check = set(result.check_failing)
        found.append(f"the check ({result.check_status}, {result.check_passed} passed) vs CI "
                     f"({sum(s == PASSED for s in result.counted.values())} passed): failing only in the check "
                     f"{sorted(check - ci_failing)[:5]}, only in CI {sorted(ci_failing - check)[:5]}")
    return found


async def measure(project: Project, work: Path, settings: SandboxSettings, timeout: float) -> Fidelity:
    bundle = BUNDLES / f"{project.bundle}.bundle"
    result = Fidelity(project=project.bundle, language=project.language)
    result.head = clone(bundle, work / "ci" / project.bundle)
    clone(bundle, work / "sandbox" / project.bundle)
    add_files(project, work / "sandbox" / project.bundle)
    result.ci = await asyncio.to_thread(run_ci, project, work / "ci" / project.bundle, work, timeout)
    await run_sandbox(project, work / "sandbox" / project.bundle, settings, result)
    result.differences = differences(result)
    return result


def render(rows: list[Fidelity]) -> str:
    lines = ["| project | language | head | CI test ids | CI failing | sandbox agrees | agreement | check agrees |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        agreement = r.agreement
        ci_failing = sum(s == FAILED for s in r.ci.statuses.values())
        same = sum(r.sandbox.statuses.get(t) == s for t, s in r.ci.statuses.items())
        share = "–" if agreement is None else f"{agreement:.1%}"
        lines.append(f"| {r.project} | {r.language} | {r.head} | {len(r.ci.statuses)} | {ci_failing} | {same} "
                     f"| {share} | {'yes' if r.check_agrees else 'no'} |")
    measured = [r for r in rows if r.agreement is not None]
    good = sum(r.agreement >= 0.99 for r in measured)
    lines.append(f"\n{good} of {len(rows)} projects agree on at least 99 % of their test ids; "
                 f"{sum(r.check_agrees for r in rows)} checks report CI's failing tests and passed count.")
    lines.append("\nDifferences:")
    for r in rows:
        for difference in r.differences[:12]:
            lines.append(f"- {r.project}: {difference}")
        if len(r.differences) > 12:
            lines.append(f"- {r.project}: ... and {len(r.differences) - 12} more")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker", "auto"])
    parser.add_argument("--only", action="append", default=[], help="a bundle's name (repeatable)")
    parser.add_argument("--timeout", type=float, default=900, help="per CI command, seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--render", type=Path, action="append", default=[],
                        help="print the table of results an earlier --json wrote (repeatable), measuring nothing")
    args = parser.parse_args()
    if args.render:
        print(render([Fidelity.model_validate(r) for path in args.render
                      for r in json.loads(path.read_text(encoding="utf-8"))]))
        return 0
    projects = [Project.model_validate(p) for p in json.loads(PROJECTS.read_text(encoding="utf-8"))]
    unknown = set(args.only) - {p.bundle for p in projects}
    if unknown:
        print(f"no such project in {PROJECTS.name}: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    projects = [p for p in projects if not args.only or p.bundle in args.only]
    work = Path(tempfile.mkdtemp(prefix="aura-fidelity-"))
    work.chmod(0o755)  # bubblewrap runs as an unprivileged uid when the benchmark runs as root
    settings = SandboxSettings(_env_file=None, backend=args.backend, cache_dir=work / "cache",
                               output_limit=OUTPUT_LIMIT)  # a whole report, not its trimmed ends
    rows = []
    try:
        for project in projects:
            print(f"{project.bundle} ...", file=sys.stderr, flush=True)
            rows.append(await measure(project, work, settings, args.timeout))
            if args.json:  # partial results survive an interrupted run
                args.json.write_text(json.dumps([r.model_dump() for r in rows], indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
