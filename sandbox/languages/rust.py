"""Rust: `cargo test`, with the crates fetched in the setup and the checks offline.

libtest's JSON and JUnit formats need `-Z unstable-options`, which stable Rust accepts only with
RUSTC_BOOTSTRAP=1 for the whole build (and build scripts that probe for nightly features then change what
they compile). So the parser reads libtest's plain text format, which is stable across releases: the
`test NAME ... ok|FAILED|ignored` lines, the `---- NAME stdout ----` sections and the `test result:` lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.parsers import trim_traceback
from sandbox.plans import CheckSpec, Plan
from sandbox.reports import FailingTest, TestCounts

CARGO_HOME = "/opt/aura-env/cargo"  # the registry and git checkouts from `cargo fetch`, read-only in checks
CARGO_TARGET = "/tmp/cargo-target"  # builds stay out of the workspace and are reused between checks


def rust_plan(repo_dir: Path) -> Plan:
    env = {"CARGO_HOME": CARGO_HOME, "CARGO_TARGET_DIR": CARGO_TARGET, "CARGO_TERM_COLOR": "never",
           "CARGO_INCREMENTAL": "0"}
    checks = [CheckSpec(name="tests", command=["cargo", "test", "--offline", "--no-fail-fast"], parser="cargo")]
    # a crate without dependencies needs nothing fetched (and no Cargo.lock written)
    text = (repo_dir / "Cargo.toml").read_text(encoding="utf-8", errors="replace")
    needs_fetch = re.search(r"^\s*\[(workspace|(\S+\.)?(dev-|build-)?dependencies)\b", text, re.M)
    setup = [["cargo", "fetch"]] if needs_fetch or (repo_dir / "Cargo.lock").is_file() else []
    return Plan(language="rust", setup=setup, checks=checks, env=env)


# `Running unittests src/lib.rs (target/debug/deps/calc-0f1e...)`; older cargo: `Running target/debug/deps/calc-0f1e...`
_RUNNING = re.compile(r"^\s+Running (?:.* \()?(?:\S*/)?([^/\s()]+?)(?:-[0-9a-f]{16})?(?:\.exe)?\)?\s*$")
_DOC_TESTS = re.compile(r"^\s+Doc-tests (\S+)\s*$")
_TEST_LINE = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)\b")
_SECTION = re.compile(r"^---- (.+?) stdout ----$")
_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
_NO_BUILD = re.compile(r"^error: could not compile `([^`]+)`")
_DOC_LINE = re.compile(r" \(line \d+\)$")
_SLOW = re.compile(r"^test (.+?) has been running for over \d+ seconds")


def _test_id(target: str, name: str) -> str:
    # doc tests carry their line number, which moves with every edit above them
    return f"{target}::{_DOC_LINE.sub('', name)}"


def parse_cargo_test(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing tests (`crate::module::test`, `tests_file::test`, `crate::doc::src/lib.rs - item`)
    from `cargo test`'s output; a crate that does not compile is an error; None when nothing ran."""
    counts, failing = TestCounts(), []
    seen = False
    target = ""
    sections: dict[str, list[str]] = {}
    section: list[str] | None = None
    failed_names: list[tuple[str, str]] = []
    for line in output.splitlines():
        if m := _RUNNING.match(line):
            target, section = m.group(1).replace("-", "_"), None
        elif m := _DOC_TESTS.match(line):
            target, section = f"{m.group(1)}::doc", None
        elif m := _SECTION.match(line):
            section = sections.setdefault(_test_id(target, m.group(1)), [])
        elif line == "failures:" or line.startswith("test result:"):
            section = None
            if m := _RESULT.match(line):
                seen = True
                counts.passed += int(m.group(1))
                counts.failed += int(m.group(2))
                counts.skipped += int(m.group(3))
        elif section is not None:
            section.append(line)
        elif (m := _TEST_LINE.match(line)) and m.group(2) == "FAILED":
            failed_names.append((target, m.group(1)))
    for target, name in failed_names:
        test_id = _test_id(target, name)
        text = "\n".join(sections.get(test_id, []))
        panic = re.search(r"panicked at (?:'(.*?)', \S+|\S+:\n(.*))", text, re.S)
        message = (panic.group(1) or panic.group(2)).splitlines()[0] if panic else ""
        failing.append(FailingTest(test_id=test_id, message=message, traceback=trim_traceback(text)))
    crates = dict.fromkeys(m.group(1) for line in output.splitlines() if (m := _NO_BUILD.match(line)))
    if crates and not seen:
        errors = "\n".join(l for l in output.splitlines() if not l.lstrip().startswith(("Compiling", "Downloaded")))
        counts.errors += len(crates)
        failing += [FailingTest(test_id=c, message="build failed", traceback=trim_traceback(errors)) for c in crates]
        seen = True
    return (counts if seen else None), failing


def cargo_unfinished_tests(output: str) -> list[str]:
    """Tests libtest reported as running for over a minute that never ended (the run was killed)."""
    slow: dict[str, None] = {}
    target = ""
    for line in output.splitlines():
        if m := _RUNNING.match(line):
            target = m.group(1).replace("-", "_")
        elif m := _DOC_TESTS.match(line):
            target = f"{m.group(1)}::doc"
        elif m := _SLOW.match(line):
            slow[_test_id(target, m.group(1))] = None
        elif m := _TEST_LINE.match(line):
            slow.pop(_test_id(target, m.group(1)), None)
    return list(slow)
