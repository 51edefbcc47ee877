"""The sandbox's report: what ran, how it ended, and the test pass rate used as reward."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from sandbox.inventory import TestInventory


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the check could not run (missing tool, collection error, crash)
    TIMEOUT = "timeout"
    OOM = "oom"
    SKIPPED = "skipped"


class TestCounts(BaseModel):
    __test__ = False  # not a pytest class

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def run(self) -> int:
        return self.passed + self.failed + self.errors


class FailingTest(BaseModel):
    test_id: str
    message: str = ""
    traceback: str = ""  # trimmed


MAX_FAILING_TESTS = 200  # listed per check; the counts keep the totals
MAX_TEST_ID_CHARS = 500
MAX_MESSAGE_CHARS = 1000


def bounded_failing(failing: list[FailingTest]) -> list[FailingTest]:
    """At most MAX_FAILING_TESTS entries, each with a bounded id and message: a report of a million failing
    tests (or one test with a megabyte name) must not fill the database, the prompt or a comment."""
    return [f.model_copy(update={"test_id": f.test_id[:MAX_TEST_ID_CHARS], "message": f.message[:MAX_MESSAGE_CHARS]})
            for f in failing[:MAX_FAILING_TESTS]]


class CheckResult(BaseModel):
    name: str
    command: list[str]
    status: CheckStatus
    exit_code: int | None = None
    duration_s: float = 0.0
    output: str = ""  # trimmed, with a marker where it was cut
    required: bool = True
    tests: TestCounts | None = None
    failing_tests: list[FailingTest] = Field(default_factory=list)
    inventory: TestInventory | None = None  # every test by id with its outcome, when the runner names them


class CheckReport(BaseModel):
    backend: str
    checks: list[CheckResult] = Field(default_factory=list)
    pass_rate: float = Field(0.0, ge=0.0, le=1.0)
    pass_rate_reason: str = ""  # why the pass rate is what it is, e.g. "syntax error in a.py"
    duration_s: float = 0.0
    plan_source: str = ""  # where the test command came from: "detected", .github/aura-sicd.yml, or the CI's file
    selected_tests: list[str] | None = None  # the test files or packages the run was narrowed to; None: all

    @property
    def all_green(self) -> bool:
        return all(c.status in (CheckStatus.PASSED, CheckStatus.SKIPPED) for c in self.checks if c.required)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status not in (CheckStatus.PASSED, CheckStatus.SKIPPED)]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def summary(self, max_chars: int = 4000) -> str:
        """Compact text for a prompt: which checks failed, the test counts, failing tests with trimmed
        tracebacks, and the output of other failed checks."""
        lines = ["Checks: " + ", ".join(
            f"{c.name} {c.status.value.upper() if c.status not in (CheckStatus.PASSED, CheckStatus.SKIPPED) else c.status.value}"
            + (f" (exit {c.exit_code})" if c.status == CheckStatus.FAILED and c.exit_code not in (None, 1) else "")
            for c in self.checks
        )]
        tests = next((c for c in self.checks if c.tests is not None), None)
        if tests is not None and tests.tests is not None:
            t = tests.tests
            lines.append(f"Tests: {t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped")
        lines.append(f"Pass rate: {self.pass_rate:.2f} ({self.pass_rate_reason})")
        head = "\n".join(lines)
        sections: list[str] = []
        for check in self.failed_checks:
            if check.failing_tests:
                for failing in check.failing_tests:
                    text = f"FAILED {failing.test_id}"
                    if failing.message:
                        text += f": {failing.message.strip().splitlines()[0][:300]}"
                    if failing.traceback:
                        text += "\n" + _indent(failing.traceback)
                    sections.append(text)
            elif check.output.strip():
                sections.append(f"{check.name} output:\n{_indent(check.output)}")
        if not sections:
            return head[:max_chars]
        # share the room left fairly between sections, each trimmed from its middle
        room = max_chars - len(head) - 2
        result = head
        for i, section in enumerate(sections):
            share = max(200, room // (len(sections) - i))
            piece = _trim_middle(section, share - 2)
            if len(result) + 2 + len(piece) > max_chars:
                omitted = len(sections) - i
                note = f"\n\n[{omitted} more not shown]"
                if len(result) + len(note) <= max_chars:
                    result += note
                break
            result += "\n\n" + piece
            room -= len(piece) + 2
        return result


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


def _trim_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = "\n  [...]\n"
    keep = max(0, limit - len(marker))
    return text[: keep // 2] + marker + text[len(text) - (keep - keep // 2):]
