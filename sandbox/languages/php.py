"""PHP: Composer for the dependencies, PHPUnit with a JUnit log for the tests.

The setup runs `composer install` with the vendor directory in the environment (COMPOSER_VENDOR_DIR);
Composer then writes the project's autoload paths as absolute /workspace paths, and every check's
workspace links `vendor` there. PHPUnit comes from the project (vendor/bin/phpunit) when it requires
phpunit/phpunit, else from the PATH (Debian's phpunit).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sandbox.errors import RepoConfigError
from sandbox.languages.junit import REPORT_ENV, parse_junit_cases
from sandbox.parsers import trim_traceback
from sandbox.plans import CheckSpec, Plan
from sandbox.reports import FailingTest, TestCounts

VENDOR = "/opt/aura-env/vendor"


def _composer(repo_dir: Path) -> dict:
    path = repo_dir / "composer.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RepoConfigError(f"composer.json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RepoConfigError("composer.json must hold a JSON object")
    return data


def php_plan(repo_dir: Path) -> Plan:
    composer = _composer(repo_dir)
    requires = {**(composer.get("require") or {}), **(composer.get("require-dev") or {})}
    phpunit = "vendor/bin/phpunit" if "phpunit/phpunit" in requires else "phpunit"
    checks = [CheckSpec(name="tests", command=["sh", "-c", f'exec {phpunit} --log-junit "${REPORT_ENV}"'],
                        parser="phpunit")]
    if not (repo_dir / "composer.json").is_file():
        return Plan(language="php", checks=checks)
    setup = [["composer", "install", "--no-interaction", "--no-progress", "--prefer-dist"]]
    return Plan(language="php", setup=setup, checks=checks, env={"COMPOSER_VENDOR_DIR": VENDOR},
                env_links=["vendor"])


_SUMMARY = re.compile(r"^(?:OK \((\d+) tests?, \d+ assertions?\)|Tests: (\d+), Assertions: \d+(.*)\.)\s*$", re.M)
_FATAL = re.compile(r"^(?:PHP )?(?:Parse error|Fatal error): .*$", re.M)


def parse_phpunit(report: bytes | None, output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing tests (`Namespace\\Class::method`, with PHPUnit's data set name) from the JUnit
    log; else the summary line; a PHP parse or fatal error before any test ran is an error."""
    if report and b"<testcase" in report:
        return parse_junit_cases(report, "::")
    if m := _SUMMARY.search(output):
        if m.group(1):
            return TestCounts(passed=int(m.group(1))), []
        words = {k.lower(): int(v) for k, v in re.findall(r"(\w+): (\d+)", m.group(3))}
        bad = words.get("failures", 0) + words.get("errors", 0)
        skipped = words.get("skipped", 0) + words.get("incomplete", 0)
        return TestCounts(passed=int(m.group(2)) - bad - skipped, failed=words.get("failures", 0),
                          errors=words.get("errors", 0), skipped=skipped), []
    if m := _FATAL.search(output):
        where = re.search(r" in (?:/workspace/)?(\S+?)(?::\d+| on line \d+)", m.group(0))
        return TestCounts(errors=1), [FailingTest(test_id=where.group(1) if where else "php", message="build failed",
                                                  traceback=trim_traceback(output[m.start():]))]
    return None, []
