"""The sandbox's report: what ran, how it ended, and the test pass rate used as reward."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


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


class CheckReport(BaseModel):
    backend: str
    checks: list[CheckResult] = Field(default_factory=list)
    pass_rate: float = Field(0.0, ge=0.0, le=1.0)
    pass_rate_reason: str = ""  # why the pass rate is what it is, e.g. "syntax error in a.py"
    duration_s: float = 0.0

    @property
    def all_green(self) -> bool:
        return all(c.status in (CheckStatus.PASSED, CheckStatus.SKIPPED) for c in self.checks if c.required)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status not in (CheckStatus.PASSED, CheckStatus.SKIPPED)]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)
