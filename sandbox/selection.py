"""Narrowing a plan's test checks to a selection of tests: the run that comes before the full suite.

A selection names test files (pytest: paths relative to the workspace), packages (Go: directories,
`./pkg/a`), crates (Rust: package names), or, for runners that find the tests related to a change
themselves (jest, vitest), the changed files. A test check is narrowed when the sandbox knows how to
narrow its runner:

- pytest started directly (`pytest ...`, `python -m pytest ...`): the plugin `aura_sicd_select` makes
  pytest skip, at collection already, every file and directory that holds no selected file, whatever
  paths or `testpaths` the command names; conftest files on the way still load;
- `go test ... ./...`: the pattern is replaced by the selected packages;
- `cargo test ...`: `-p crate` for each selected crate (instead of `--workspace`);
- `npm test ...` whose script runs jest: `-- --findRelatedTests <files>`; vitest: `-- related <files>`.

The narrowed plan holds the narrowed test checks only. The checks without tests (syntax, lint, types)
look at the whole project whatever the selection, and a type checker can take as long as the suite: they
run in the full run that follows a passing selection, as does a test check the sandbox cannot narrow (a
wrapper such as tox or make, another runner). When no test check can be narrowed, there is no narrowed
plan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sandbox.plans import CheckSpec, Plan

SELECT_PLUGIN = "aura_sicd_select"
SELECT_ENV = "AURA_SICD_SELECT"  # the file listing the selected paths, one a line


class TestSelection(BaseModel):
    __test__ = False  # not a pytest class

    paths: list[str] = Field(min_length=1)  # test files (pytest), packages (Go, `./dir`), crates (Rust), or
    # with `related`, the changed files whose tests the runner finds itself
    related: Literal["jest", "vitest"] | None = None


def starts_pytest(command: list[str]) -> bool:
    """Whether `command` starts pytest itself (not through sh -c, tox or make)."""
    program = command[0].rsplit("/", 1)[-1] if command else ""
    return program in ("pytest", "py.test") or (program.startswith("python") and command[1:3] == ["-m", "pytest"])


def _narrow_check(spec: CheckSpec, selection: TestSelection) -> CheckSpec | None:
    if spec.parser == "pytest" and starts_pytest(spec.command) and selection.related is None:
        return spec  # the runner loads the plugin (runner.py)
    if spec.parser == "go" and spec.command[:2] == ["go", "test"] and "./..." in spec.command \
            and selection.related is None:
        at = spec.command.index("./...")
        packages = [p if p.startswith("./") else f"./{p}" for p in selection.paths]
        return spec.model_copy(update={"command": [*spec.command[:at], *packages, *spec.command[at + 1:]]})
    if spec.parser == "cargo" and spec.command[:2] == ["cargo", "test"] and selection.related is None:
        rest = [a for a in spec.command[2:] if a not in ("--workspace", "--all")]
        crates = [arg for crate in selection.paths for arg in ("-p", crate)]
        return spec.model_copy(update={"command": ["cargo", "test", *crates, *rest]})
    if spec.parser == "node" and spec.command[:2] == ["npm", "test"] and selection.related is not None:
        option = "--findRelatedTests" if selection.related == "jest" else "related"
        extra = [option, *selection.paths]
        separator = [] if "--" in spec.command else ["--"]
        return spec.model_copy(update={"command": [*spec.command, *separator, *extra]})
    return None


def narrow_plan(plan: Plan, selection: TestSelection) -> Plan | None:
    """The plan with its test checks narrowed to `selection` (see the module's docstring), or None when
    none of them can be."""
    checks = [narrow for spec in plan.checks if spec.parser != "none"
              and (narrow := _narrow_check(spec, selection)) is not None]
    if not checks:
        return None
    return plan.model_copy(update={"checks": checks, "selected_tests": list(selection.paths)})
