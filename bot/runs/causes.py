"""Failing tests grouped by cause, so a scan makes one task per bug, not one per test id.

Two failures belong together when they are cases of one test function (`test_x[1]`, `test_x[2]`, the
parametrized cases of one bug), or when their tracebacks end in the same frame of the code under test
(two test functions tripping over the same line). Groups are merged transitively, in the order the
tests were reported.
"""

from __future__ import annotations

import re

from bot.context.localize import is_test_path
from bot.context.tracebacks import PATH_LINE, PY_FRAME
from sandbox.reports import FailingTest

_CASE = re.compile(r"\[.*\]$")  # a parametrized case's id: test_x[3-4]


def function_of(test_id: str) -> str:
    """The test function's id, its parametrization dropped: `t.py::test_x[3]` -> `t.py::test_x`."""
    return _CASE.sub("", test_id)


def failing_frame(test: FailingTest) -> tuple[str, int] | None:
    """The innermost traceback frame outside the tests (path, line): where the code under test failed."""
    text = f"{test.traceback}\n{test.message}"
    frames = [(m.group(1), int(m.group(2))) for pattern in (PY_FRAME, PATH_LINE) for m in pattern.finditer(text)]
    # PY_FRAME frames are listed outermost first; pytest's short form (path:line: in f) too
    code = [(path.removeprefix("/workspace/").removeprefix("./"), line) for path, line in frames
            if not is_test_path(path) and "site-packages" not in path and not path.startswith("<")]
    return code[-1] if code else None


def group_by_cause(tests: list[FailingTest]) -> list[list[FailingTest]]:
    """The failing tests in groups of one cause each, in the order of each group's first test."""
    groups: list[list[FailingTest]] = []
    keys: list[set[object]] = []
    for test in tests:
        mine: set[object] = {function_of(test.test_id)}
        if (frame := failing_frame(test)) is not None:
            mine.add(frame)
        joined = [index for index, known in enumerate(keys) if known & mine]
        if not joined:
            groups.append([test])
            keys.append(mine)
            continue
        first = joined[0]
        groups[first].append(test)
        keys[first] |= mine
        for index in reversed(joined[1:]):  # this test links groups that were apart: one cause
            groups[first] += groups.pop(index)
            keys[first] |= keys.pop(index)
    return groups
