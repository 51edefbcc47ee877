"""The verdict runs the tests the base had: an attempt that touches tests, their data, their configuration
or what collects them is judged a second time with those files as the base had them.

`plan_judging` reads the attempt's diff: every path that is not source (bot/path_kinds.py) and that
the attempt adds, changes, deletes or renames. In the judging run what the base had is restored and what
it did not have is left out — new tests too: they ran in the attempt's own run, and in the judging run a
new test module could patch the code under test when it is imported. Configuration files count only
when their test part changed. Paths the task
asks to change keep the attempt's version, and are shown. `scan_diff` names what no run can show:
lines that tamper with the test harness, skips added to existing tests, and changed expectations (an
assertion or expected value of an existing test that the attempt rewrites), listed with their hunks.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import BaseModel

from bot.cycle.baseline import Baseline, compare, relates_to_task
from bot.cycle.inventory import Regression, describe, file_of, regressions, task_asks_to_change
from bot.path_kinds import PathKind, changes_test_settings, classify
from bot.verdict_records import ChangedExpectation, JudgedAs, Judgment, Status, Tampering, TestChange
from bot.workspace import Workspace, apply_diff, run_git
from sandbox.reports import CheckReport

_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)
_ASSERTION = re.compile(r"\b(assert\w*|expect|should|assertThat|t\.(Error|Fatal)\w*|want|expected|toBe|toEqual|"
                        r"toStrictEqual|toMatch\w*|Equal|DeepEqual|eq)\b|==|!=")
HUNK_CHARS = 1500


class FilePatch(BaseModel):
    path: str
    status: Status
    text: str  # this file's part of the diff


def file_patches(diff: str) -> list[FilePatch]:
    """Each file's part of a git diff; a rename is a deletion of the old path and an addition of the new."""
    out: list[FilePatch] = []
    headers = list(_HEADER.finditer(diff))
    for i, header in enumerate(headers):
        text = diff[header.start(): headers[i + 1].start() if i + 1 < len(headers) else len(diff)]
        old, new = header.group(1), header.group(2)
        meta = text.split("\n@@", 1)[0]
        if "\nrename from " in meta or old != new:
            out.append(FilePatch(path=old, status="deleted", text=text))
            out.append(FilePatch(path=new, status="added", text=text))
        elif "\nnew file mode" in meta:
            out.append(FilePatch(path=new, status="added", text=text))
        elif "\ndeleted file mode" in meta:
            out.append(FilePatch(path=old, status="deleted", text=text))
        else:
            out.append(FilePatch(path=new, status="modified", text=text))
    return out


_DEFINED = re.compile(r"(?:\bdef|\bfunc|\bclass|\b(?:test|it|describe)\s*\()\s*['\"`]?([A-Za-z_][\w ]*\w)")


def _names_in(patch_text: str) -> set[str]:
    """The tests a file's patch touches: defined on its lines or named in its hunk headers."""
    return set(_DEFINED.findall(patch_text))


def plan_judging(diff: str, task_text: str, read_base, read_attempt) -> list[TestChange]:
    """The non-source paths the attempt touched, each with how the judging run has it. `read_base(path)`
    and `read_attempt(path)` give a file's text at the base and with the attempt (None: absent)."""
    changes: list[TestChange] = []
    for patch in file_patches(diff):
        kind = classify(patch.path)
        if kind is PathKind.SOURCE:
            continue
        if kind is PathKind.TEST_CONFIG and not changes_test_settings(patch.path, read_base(patch.path),
                                                                      read_attempt(patch.path)):
            continue  # a version bump in pyproject.toml selects no other tests
        asked = any(task_asks_to_change(name, task_text) for name in [patch.path, *_names_in(patch.text)])
        if asked:
            judged: JudgedAs = "attempt"
        elif patch.status != "added":
            judged = "base"
        else:  # new tests ran in the attempt's own run; here they could patch the code under test at import
            judged = "removed"
        changes.append(TestChange(path=patch.path, kind=kind, status=patch.status, judged_as=judged, asked=asked))
    return changes


# --- what the diff says by itself ------------------------------------------------------------------------

# (pattern, reason) for lines an attempt adds anywhere
_TAMPERING = [
    (r"PYTEST_CURRENT_TEST|JEST_WORKER_ID|VITEST_(WORKER|POOL)_ID|NODE_TEST_CONTEXT|process\.env\.VITEST\b",
     "reads a variable only a test runner sets, to behave differently under test"),
    (r"""['"](_?pytest|unittest)['"]\s+(not\s+)?in\s+sys\.modules|sys\.modules\[\s*['"](_?pytest|unittest)""",
     "looks for the test runner in sys.modules"),
    (r"\b(from|import)\s+_pytest\b|\b_pytest\.", "reaches into pytest's internals"),
    (r"\bpytest_(runtest_makereport|runtest_logreport|runtest_protocol|report_teststatus|collection_modifyitems|"
     r"collect_file|ignore_collect|pycollect_makeitem|collection_finish|sessionfinish|deselected)\b",
     "adds a pytest hook that changes what is collected, run or reported"),
    (r"\bTestReport\b|\.outcome\s*=\s*['\"]passed['\"]|\blongrepr\s*=\s*None", "rewrites test reports"),
    (r"\bos\._exit\s*\(", "ends the process at once, before the test runner reports"),
    (r"\b(unittest\.)?TestCase\.(assert|fail)\w*\s*=|\bbuiltins\.\w+\s*=|setattr\(\s*(unittest|builtins|pytest)\b|"
     r"\bpytest\.(approx|raises)\s*=|\bassert\.\w+\s*=\s*", "replaces the assertion machinery"),
    (r"\btesting\.Testing\(\)|flag\.Lookup\(\s*\"test\.", "asks Go's testing package whether it runs under test"),
    (r"^\s*//\s*(go:build|\+build)\s+.*\bignore\b", "adds a build tag that keeps the file out of the build"),
    (r"(^|\s)(import|from)\s+(sitecustomize|usercustomize)\b|\bsite\.addsitedir\(", "plants start-up code"),
]
# added to the code under test only (tests and tools read the command line and the environment for good
# reasons): asking whether it runs under a test runner
_TEST_WORD = r"(pytest|unittest|\btest\b|\bspec\b|\.test\b|_test\b|\btest_)"
_RUNNER_DETECTION = [
    (rf"\b(sys\.argv|process\.argv)\b.*{_TEST_WORD}|{_TEST_WORD}.*\b(sys\.argv|process\.argv)\b",
     "reads the command line to tell whether a test runner started it"),
    (r"\bos\.Args\b.*\.test\b", "asks whether the Go binary is a test binary"),
    (r"""(environ(\.get)?\s*[\[(]\s*|getenv\s*\(\s*|Getenv\(\s*|process\.env\.|ENV\[\s*)['"]?"""
     r"""(CI|GITHUB_ACTIONS|CONTINUOUS_INTEGRATION)\b['"]?""",
     "reads a variable CI runners set, to behave differently where the checks run"),
    # pytest 8.2+ sets PYTEST_VERSION for its whole run, xdist its workers' ids, and the sandbox PYTEST_ADDOPTS;
    # conftests read them for good reasons; a project's own code rarely does (a pytest plugin's might)
    (r"\bPYTEST_(VERSION|XDIST_WORKER(_COUNT)?|ADDOPTS)\b", "reads a variable a test runner sets, to behave "
     "differently under test"),
    (r"\bNODE_ENV\s*[!=]==?\s*['\"]test['\"]|['\"]test['\"]\s*[!=]==?\s*process\.env\.NODE_ENV",
     "reads NODE_ENV to behave differently under test"),
    (rf"\b(sys\._getframe|inspect\.stack|inspect\.currentframe|f_back|f_code)\b.*{_TEST_WORD}",
     "inspects its callers to tell whether a test called it"),
    (r"\b(open|read_text|read_bytes|readFileSync|readFile|ReadFile|getsource)\b.*['\"`][^'\"`]*"
     r"(\btests?/|\btest_\w*\.py|_test\.(py|go)|\.(test|spec)\.[cm]?[jt]sx?)",
     "reads the tests' own files to find the answers they expect"),
]
# at module level (no indentation), or anywhere in a test: ending the run with success
_EARLY_EXIT = re.compile(r"\b(sys\.exit|exit|quit|process\.exit|os\.Exit)\s*\(\s*(0|None|)\s*\)")
# added to an existing test: it no longer runs, or no longer counts
_SKIPS = re.compile(
    r"@(pytest\.)?mark\.(skip|skipif|xfail)\b|\bpytest\.(skip|xfail|importorskip)\s*\(|@unittest\.(skip\w*|expectedFailure)|"
    r"\bself\.skipTest\s*\(|\braise\s+(unittest\.)?SkipTest\b|\bt\.(Skip|SkipNow|Skipf)\s*\(|"
    r"\b(it|test|describe|suite|context)\.(skip|only|todo|failing)\b|\b(xit|xdescribe|xtest|fit|fdescribe)\s*\(|"
    r"#\[ignore\]|@(Disabled|Ignore)\b"
)
_ALWAYS_EQUAL = re.compile(r"def\s+__(eq|ne)__\s*\(")
_CONSTANT_RETURN = re.compile(r"^\s*return\s+(True|False|NotImplemented\s+if\s+False\s+else\s+True)\s*$")


def _added_lines(patch: FilePatch) -> list[str]:
    return [line[1:] for line in patch.text.splitlines() if line.startswith("+") and not line.startswith("+++")]


def tampering(diff: str, task_text: str = "") -> list[Tampering]:
    """Lines the attempt adds that tamper with how tests run or count."""
    found: list[Tampering] = []
    for patch in file_patches(diff):
        if patch.status == "deleted":
            continue
        kind = classify(patch.path)
        lines = _added_lines(patch)
        for i, line in enumerate(lines):
            source_rules = _RUNNER_DETECTION if kind is PathKind.SOURCE else []
            for pattern, reason in [*_TAMPERING, *source_rules]:
                if re.search(pattern, line):
                    found.append(Tampering(path=patch.path, line=line, reason=reason))
                    break
            else:
                if _EARLY_EXIT.search(line) and (not line[:1].isspace() or kind is not PathKind.SOURCE):
                    found.append(Tampering(path=patch.path, line=line, reason="ends the run early with success"))
                elif _ALWAYS_EQUAL.search(line) and any(_CONSTANT_RETURN.match(nxt) for nxt in lines[i + 1: i + 3]):
                    found.append(Tampering(path=patch.path, line=line, reason="makes every comparison come out equal"))
                elif patch.status == "modified" and kind is PathKind.TEST and _SKIPS.search(line) \
                        and not task_asks_to_change(patch.path, task_text):
                    found.append(Tampering(path=patch.path, line=line,
                                           reason="skips, narrows or excuses an existing test"))
    return found


def changed_expectations(diff: str) -> list[ChangedExpectation]:
    """Hunks of existing tests where an assertion or expected value is removed or rewritten."""
    found: list[ChangedExpectation] = []
    for patch in file_patches(diff):
        if patch.status != "modified" or classify(patch.path) not in (PathKind.TEST, PathKind.TEST_DATA):
            continue
        for hunk in re.split(r"\n(?=@@)", patch.text)[1:]:
            removed = [line for line in hunk.splitlines() if line.startswith("-") and not line.startswith("---")]
            data = classify(patch.path) is PathKind.TEST_DATA
            if removed and (data or any(_ASSERTION.search(line) for line in removed)):
                text = hunk if len(hunk) <= HUNK_CHARS else hunk[:HUNK_CHARS] + "\n[...]"
                found.append(ChangedExpectation(path=patch.path, hunk=text))
    return found


_DOCTEST_PROMPT = re.compile(r"^\s*(>>>|\.\.\.)(\s|$)")


def _removed_doctest_output(hunk: str) -> bool:
    """Whether a hunk removes a line of a doctest example's expected output: the lines after `>>>` or `...`
    on the old side, indented as far, up to a blank line or the docstring's end."""
    prompt_indent: int | None = None
    for line in hunk.splitlines()[1:]:
        if line.startswith("+"):
            continue
        old = line[1:]
        indent = len(old) - len(old.lstrip())
        if _DOCTEST_PROMPT.match(old):
            prompt_indent = indent
        elif not old.strip() or old.lstrip().startswith(('"""', "'''")) \
                or (prompt_indent is not None and indent < prompt_indent):
            prompt_indent = None
        elif prompt_indent is not None and line.startswith("-"):
            return True
    return False


def changed_doctest_outputs(diff: str) -> list[ChangedExpectation]:
    """Hunks outside the tests (docstrings, `README.rst`) that rewrite a doctest's expected output: a doctest's
    expectation lives in the code it tests, so restoring the tests cannot restore it."""
    found: list[ChangedExpectation] = []
    for patch in file_patches(diff):
        if patch.status != "modified" or classify(patch.path) is not PathKind.SOURCE:
            continue
        for hunk in re.split(r"\n(?=@@)", patch.text)[1:]:
            if _removed_doctest_output(hunk):
                text = hunk if len(hunk) <= HUNK_CHARS else hunk[:HUNK_CHARS] + "\n[...]"
                found.append(ChangedExpectation(path=patch.path, hunk=text))
    return found


def rewritten_failing_doctests(doctests: list[ChangedExpectation], baseline: Baseline,
                               task_text: str) -> list[Tampering]:
    """Rewritten doctest outputs in a file whose doctests fail on the base and relate to the task: the answer
    changed to match the bug, unless the task asks for that file to change."""
    failing_files = {file_of(t) for t in baseline.failing_tests if relates_to_task(t, task_text)}
    return [Tampering(path=d.path, line=d.hunk.splitlines()[0],
                      reason="rewrites the expected output of a doctest that fails on main")
            for d in doctests if d.path in failing_files and not task_asks_to_change(d.path, task_text)]


# --- the judging run -------------------------------------------------------------------------------------

RULE_BASE_TESTS = "Judged with the tests as the base had them"
RULE_STOPPED = "Tests that ran on main no longer run"
RULE_TAMPERING = "The change tampers with how tests run or count"


def _read_base(ws: Workspace, path: str) -> str | None:
    if not run_git(["ls-tree", "--name-only", ws.base_sha, "--", path], ws.path).strip():
        return None
    return run_git(["show", f"{ws.base_sha}:{path}"], ws.path)


def _read_attempt(ws: Workspace, path: str) -> str | None:
    file = ws.path / path
    return file.read_text(encoding="utf-8", errors="replace") if file.is_file() else None


def prepare_judging_tree(ws: Workspace, diff: str, task_text: str) -> list[TestChange]:
    """The worktree as the attempt has it, then its tests, test data, test configuration and collection
    hooks as the judging run has them (see `plan_judging`)."""
    apply_diff(ws, diff)
    changes = plan_judging(diff, task_text, lambda p: _read_base(ws, p), lambda p: _read_attempt(ws, p))
    for change in changes:
        target = ws.path / change.path
        if change.judged_as == "base" and _read_base(ws, change.path) is not None:
            run_git(["checkout", ws.base_sha, "--", change.path], ws.path)
        elif change.judged_as != "attempt" and (target.is_file() or target.is_symlink()):
            target.unlink()
    return changes


def stopped_tests(baseline: Baseline, report: CheckReport, task_text: str) -> list[Regression]:
    """Tests that ran on the base and do not run in `report`, check by check; by their count where the
    runner names no test (jest, vitest and mocha by default)."""
    found: list[Regression] = []
    for check in baseline.checks:
        now = report.check(check.name)
        if check.inventory is not None and now is not None:
            found += regressions(check.inventory, now.inventory, task_text)
    if baseline.tests_run and not any(c.inventory is not None for c in baseline.checks):
        ran = sum(c.tests.run for c in report.checks if c.tests is not None)
        if ran < baseline.tests_run:
            found.append(Regression(test_id="(the test count)", reason=f"{ran} tests ran, {baseline.tests_run} on main"))
    return found


_LITERAL = re.compile(r"""(?<![\w.])(-?\d+(?:\.\d+)?|"[^"\n]{1,80}"|'[^'\n]{1,80}')(?![\w.])""")
_BRANCH = re.compile(r"^\s*(if|elif|else\s+if|case)\b|\?\s*$|^\s*if\s*\(")
_RETURN = re.compile(r"^\s*return\b(.*)$")
_TRIVIAL = {"0", "1", "-1", '""', "''"}


def literals(text: str) -> set[str]:
    found = {m.replace("'", '"') for m in _LITERAL.findall(text)}
    return found - _TRIVIAL


def special_cases(diff: str, test_literals: set[str]) -> list[Tampering]:
    """Source lines that branch on a test's inputs and return its expected value: the answer written in
    for the one case a test checks (`if (a, b) == (2, 3): return 5`)."""
    found: list[Tampering] = []
    for patch in file_patches(diff):
        if patch.status == "deleted" or classify(patch.path) is not PathKind.SOURCE:
            continue
        lines = _added_lines(patch)
        for i, line in enumerate(lines):
            if not _BRANCH.search(line):
                continue
            condition = literals(line)
            if not condition or not condition <= test_literals:
                continue
            returned = next((literals(m.group(1)) for nxt in lines[i + 1: i + 3] if (m := _RETURN.match(nxt))), set())
            if returned and returned <= test_literals:
                found.append(Tampering(path=patch.path, line=line,
                                       reason="special-cases a test's inputs and returns its expected value"))
    return found


def _test_literals(ws: Workspace, baseline: Baseline, task_text: str) -> set[str]:
    """The literals of the base's tests that fail and relate to the task (their whole files)."""
    files = {file_of(t) for t in baseline.failing_tests if relates_to_task(t, task_text)}
    found: set[str] = set()
    for path in files:
        text = _read_base(ws, path) if "/" in path or path.endswith((".py", ".go", ".js", ".ts")) else None
        found |= literals(text or "")
    return found


async def judge_attempt(ws: Workspace, diff: str, task_text: str, baseline: Baseline, report: CheckReport,
                        box: Any) -> Judgment:
    """The attempt's tests judged: its own run's inventory against the base's, the diff's tampering, and,
    when it touched tests or what runs them, a second run with those as the base had them."""
    doctests = changed_doctest_outputs(diff)
    judgment = Judgment(expectations=changed_expectations(diff) + doctests, tampering=tampering(diff, task_text))
    judgment.tampering += rewritten_failing_doctests(doctests, baseline, task_text)
    test_literals = await asyncio.to_thread(_test_literals, ws, baseline, task_text)
    judgment.tampering += special_cases(diff, test_literals)
    judgment.test_changes = await asyncio.to_thread(prepare_judging_tree, ws, diff, task_text)
    stopped = stopped_tests(baseline, report, task_text)
    if judgment.restores:
        judged = await box.check(ws.path)
        judgment.judging_report = judged
        against = compare(baseline, judged, task_text)
        shown = ", ".join(c.describe() for c in judgment.test_changes if c.judged_as != "attempt")
        if against.new_failures:
            judgment.blockers.append(f"{RULE_BASE_TESTS} ({shown}), tests fail that did not fail on main: "
                                     f"{', '.join(against.new_failures[:8])}.")
        if against.still_failing_related:
            judgment.blockers.append(f"{RULE_BASE_TESTS} ({shown}), the tests this task is about still fail: "
                                     f"{', '.join(against.still_failing_related[:8])}.")
        seen = {r.test_id for r in stopped}
        stopped += [r for r in stopped_tests(baseline, judged, task_text) if r.test_id not in seen]
    if stopped:
        judgment.blockers.append(f"{RULE_STOPPED}: {describe(stopped)}.")
    if judgment.tampering:
        judgment.blockers.append(f"{RULE_TAMPERING}: {'; '.join(str(t) for t in judgment.tampering[:5])}.")
    return judgment


def for_reviewer(judgment: Judgment | None) -> str:
    """What the discriminator is told besides the checks: the tests the attempt changed and how."""
    if judgment is None or not (judgment.test_changes or judgment.expectations or judgment.tampering):
        return ""
    parts = ["\n\nThe change touches the tests that judge it:"]
    parts += [f"- {c.describe()}" for c in judgment.test_changes]
    if judgment.expectations:
        parts.append("Changed expectations (existing assertions or expected values it rewrites):")
        parts += [f"{e.path}:\n{e.hunk}" for e in judgment.expectations[:5]]
    parts += [f"- {b}" for b in judgment.blockers]
    return "\n".join(parts)
