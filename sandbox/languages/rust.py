"""Rust: `cargo test`, with the crates fetched in the setup and the checks offline.

libtest's JSON and JUnit formats need `-Z unstable-options`, which stable Rust accepts only with
RUSTC_BOOTSTRAP=1 for the whole build (and build scripts that probe for nightly features then change what
they compile). So the parser reads libtest's plain text format, which is stable across releases: the
`test NAME ... ok|FAILED|ignored` lines, the `---- NAME stdout ----` sections and the `test result:` lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.inventory import Outcome, TestInventory
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
    # [dependencies], [dev-dependencies.x], [target.'cfg(unix)'.build-dependencies], [workspace]...
    needs_fetch = re.search(r"^\s*\[(workspace\b|.*\bdependencies\b)", text, re.M)
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


def _line(name: str) -> int:
    m = re.search(r"\(line (\d+)\)$", name)
    return int(m.group(1)) if m else 0


def _test_ids(tests: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Ids of (target, libtest name) pairs. Doc tests carry their line number, which moves with every edit
    above them: it is left out, and doc tests of one item (or of a module's docs, which have no item name)
    are numbered in file order instead."""
    groups: dict[tuple[str, str], set[str]] = {}
    for target, name in tests:
        groups.setdefault((target, _DOC_LINE.sub("", name)), set()).add(name)
    ids = {}
    for (target, base), names in groups.items():
        for i, name in enumerate(sorted(names, key=_line), 1):
            ids[(target, name)] = f"{target}::{base}" + (f" #{i}" if len(names) > 1 else "")
    return ids


def parse_cargo_test(output: str) -> tuple[TestCounts | None, list[FailingTest]]:
    """Counts and failing tests (`crate::module::test`, `tests_file::test`, `crate::doc::src/lib.rs - item`)
    from `cargo test`'s output; a crate that does not compile is an error; None when nothing ran."""
    counts, failing = TestCounts(), []
    seen = False
    target = ""
    sections: dict[tuple[str, str], list[str]] = {}
    section: list[str] | None = None
    tests: dict[tuple[str, str], str] = {}  # (target, name) -> ok, FAILED or ignored
    for line in output.splitlines():
        if m := _RUNNING.match(line):
            target, section = m.group(1).replace("-", "_"), None
        elif m := _DOC_TESTS.match(line):
            target, section = f"{m.group(1)}::doc", None
        elif m := _SECTION.match(line):
            section = sections.setdefault((target, m.group(1)), [])
        elif line == "failures:" or line.startswith("test result:"):
            section = None
            if m := _RESULT.match(line):
                seen = True
                counts.passed += int(m.group(1))
                counts.failed += int(m.group(2))
                counts.skipped += int(m.group(3))
        elif section is not None:
            section.append(line)
        elif m := _TEST_LINE.match(line):
            tests[(target, m.group(1))] = m.group(2)
    ids = _test_ids(list(tests))
    for key in (key for key, status in tests.items() if status == "FAILED"):
        test_id = ids[key]
        text = "\n".join(sections.get(key, []))
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
    slow: dict[tuple[str, str], None] = {}
    target = ""
    for line in output.splitlines():
        if m := _RUNNING.match(line):
            target = m.group(1).replace("-", "_")
        elif m := _DOC_TESTS.match(line):
            target = f"{m.group(1)}::doc"
        elif m := _SLOW.match(line):
            slow[(target, m.group(1))] = None
        elif m := _TEST_LINE.match(line):
            slow.pop((target, m.group(1)), None)
    ids = _test_ids(list(slow))  # numbered among the unfinished only: the others' names are unknown here
    return [ids[key] for key in slow]


_OUTCOMES = {"ok": Outcome.PASSED, "FAILED": Outcome.FAILED, "ignored": Outcome.SKIPPED}


def cargo_inventory(output: str) -> TestInventory | None:
    """Every test libtest reported (`test name ... ok|FAILED|ignored`), named as the failing tests are."""
    tests: dict[tuple[str, str], str] = {}
    target = ""
    for line in output.splitlines():
        if m := _RUNNING.match(line):
            target = m.group(1).replace("-", "_")
        elif m := _DOC_TESTS.match(line):
            target = f"{m.group(1)}::doc"
        elif m := _TEST_LINE.match(line):
            tests[(target, m.group(1))] = m.group(2)
    if not tests:
        return None
    ids = _test_ids(list(tests))
    return TestInventory(source="cargo test", tests={ids[key]: _OUTCOMES[status] for key, status in tests.items()})
