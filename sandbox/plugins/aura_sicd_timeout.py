"""aura-sicd's per-test time limit for pytest. The sandbox copies this file into the sandbox, puts it on
PYTHONPATH and loads it with `-p aura_sicd_timeout`; nothing is installed into the project.

When a test (setup, call and teardown) runs longer than AURA_SICD_TEST_TIMEOUT_S seconds, SIGALRM fails it
with a message naming the limit, and the run goes on with the next test. A test stuck where no signal
reaches it (a C call that never returns) is ended with the whole run, HARD_EXIT_GRACE_S later, by
faulthandler, which dumps every thread's stack. The node id of the test running is kept in the file
AURA_SICD_CURRENT_TEST and emptied when the test ends, so a run that never finishes still names its test.
A project that uses pytest-timeout keeps its own limits: both would use SIGALRM, so this one steps aside.

Once a test has hung, the remaining cases of the same test function (its other parameters) would most likely
hang too: they are failed at once, unrun, with a message naming the case that hung, so that a
parametrized test whose every case hangs (QuixBugs' buggy `bitcount`) costs one limit, not one per case.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading

import pytest

LIMIT_S = float(os.environ.get("AURA_SICD_TEST_TIMEOUT_S") or 0)
CURRENT_TEST_FILE = os.environ.get("AURA_SICD_CURRENT_TEST")
HARD_EXIT_GRACE_S = 10.0

# loaded with -p, this module is imported before pytest captures output: fd 2 is still the real stderr
_stderr_fd = os.dup(2)
_project_has_timeouts = False
_hung: dict[str, str] = {}  # test function (node id without parameters) -> the node id of the case that hung


def pytest_configure(config) -> None:
    global _project_has_timeouts
    _project_has_timeouts = config.pluginmanager.hasplugin("timeout")  # pytest-timeout


def _record(nodeid: str) -> None:
    if CURRENT_TEST_FILE:
        try:
            with open(CURRENT_TEST_FILE, "w", encoding="utf-8") as fh:
                fh.write(nodeid)
        except OSError:
            pass  # the name is a help for the report, never a reason to disturb the run


class _Hung(pytest.fail.Exception):
    """The per-test limit expired (a failure, as pytest.fail raises, that the plugin can tell apart)."""


def _expire(signum, frame) -> None:
    raise _Hung(f"aura-sicd: the test ran longer than its limit of {LIMIT_S:g} s (test_timeout_s)", pytrace=True)


def _function_id(item) -> str:
    return item.nodeid.split("[", 1)[0]


def _not_run(hung: str):
    def runtest() -> None:
        pytest.fail(f"aura-sicd: not run: the case {hung} of this test hung past its limit "
                    f"of {LIMIT_S:g} s, so its other cases were not run", pytrace=False)

    return runtest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.excinfo is not None and call.excinfo.errisinstance(_Hung):
        _hung.setdefault(_function_id(item), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _record(item.nodeid)
    hung = _hung.get(_function_id(item))
    if hung is not None:
        item.runtest = _not_run(hung)  # fixtures are set up as usual; the test body is not run
    armed = LIMIT_S > 0 and not _project_has_timeouts and threading.current_thread() is threading.main_thread()
    if armed:
        previous = signal.signal(signal.SIGALRM, _expire)
        signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
        faulthandler.dump_traceback_later(LIMIT_S + HARD_EXIT_GRACE_S, exit=True, file=_stderr_fd)
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            faulthandler.cancel_dump_traceback_later()
        _record("")
