"""aura-sicd's test inventory for pytest. The sandbox copies this file into the sandbox, puts it on
PYTHONPATH and loads it with `-p aura_sicd_inventory`; nothing is installed into the project.

It appends JSON lines to the file AURA_SICD_INVENTORY: the node ids collected, those deselected (by -k, -m,
--deselect or a hook), and one line per test report (phase, outcome, whether the test was expected to
fail, the skip reason). sandbox/inventory.py reads them back. Lines are flushed as they come, so a run
that is killed still leaves what it had reached.
"""

from __future__ import annotations

import json
import os

import pytest

INVENTORY_FILE = os.environ.get("AURA_SICD_INVENTORY")


def _write(event: dict) -> None:
    if not INVENTORY_FILE:
        return
    try:
        with open(INVENTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
    except OSError:
        pass  # the inventory is evidence for the verdict, never a reason to disturb the run


def pytest_deselected(items) -> None:
    _write({"deselected": [item.nodeid for item in items]})


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session) -> None:
    _write({"collected": [item.nodeid for item in session.items]})


def pytest_runtest_logreport(report) -> None:
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
    xfail = hasattr(report, "wasxfail")
    if xfail:
        reason = str(report.wasxfail) or reason
    _write({"id": report.nodeid, "when": report.when, "outcome": report.outcome, "xfail": xfail, "reason": reason})


def pytest_collectreport(report) -> None:
    if report.failed:  # a file that could not be collected: its tests are unknown, the file is the id
        _write({"id": report.nodeid, "when": "collect", "outcome": "failed", "xfail": False, "reason": ""})
