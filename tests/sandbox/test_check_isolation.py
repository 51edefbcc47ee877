"""Nothing from one check run reaches the next (issue 17): a run that plants a pytest plugin or a
sitecustomize.py in /tmp, or leaves a process behind to forge the next run's files, finds nothing of it in
the next run. Both real backends."""

from __future__ import annotations

from pathlib import Path

from sandbox import open_sandbox
from tests.sandbox.conftest import settings_for, write_tree

# the first run plants; every later run shows what it finds
PLANT = (
    "if [ -e /workspace/plant ]; then "
    "mkdir -p /tmp/aura-sicd/plugins /tmp/.local && "
    "echo 'print(\"PLANTED-SITECUSTOMIZE\")' > /tmp/aura-sicd/plugins/sitecustomize.py && "
    "echo planted > /tmp/.local/marker && "
    "(setsid sh -c 'sleep 2; echo forged > /workspace/forged.txt; echo forged > /tmp/forged.txt' >/dev/null 2>&1 &) ; "
    "echo PLANTER; "
    "else sleep 4; echo FOUND:; ls -A /tmp; cat /workspace/forged.txt /tmp/forged.txt 2>/dev/null; "
    "PYTHONPATH=/tmp/aura-sicd/plugins python3 -c 'print(1)'; fi"
)
CONFIG = "checks:\n  - name: probe\n    run: |\n      " + PLANT + "\n"


async def test_a_check_run_finds_nothing_an_earlier_run_planted(tmp_path: Path, backend: str):
    base = write_tree(tmp_path / "base", {".github/aura-sicd.yml": CONFIG, "README.md": "x\n"})
    planter = write_tree(tmp_path / "planter", {".github/aura-sicd.yml": CONFIG, "plant": "", "README.md": "x\n"})
    async with open_sandbox(settings_for(backend), base) as box:
        first = await box.check(planter)
        assert "PLANTER" in first.checks[0].output
        second = await box.check(base)
    seen = second.checks[0].output
    assert "FOUND:" in seen, seen
    assert "forged" not in seen  # the process left behind did not outlive its run, or could not write
    assert "PLANTED-SITECUSTOMIZE" not in seen
    assert "marker" not in seen and ".local" not in seen and "aura-sicd" not in seen.split("FOUND:")[1].split("1")[0]


async def test_only_vites_temp_directory_of_node_modules_is_writable_and_it_starts_empty(tmp_path: Path, backend: str):
    """node_modules lives in the read-only environment; vite's .vite-temp is a writable mount of its own
    (Plan.env_scratch), emptied before every check run like /tmp."""
    probe = ("ls -A node_modules/.vite-temp; touch node_modules/.vite-temp/planted && echo WROTE-TEMP; "
             "touch node_modules/planted 2>/dev/null && echo WROTE-NODE-MODULES; true")
    repo = write_tree(tmp_path / "js", {
        "package.json": '{"name": "p", "version": "1.0.0", "devDependencies": {"is-number": "7.0.0"}}',
        ".github/aura-sicd.yml": f"checks:\n  - name: probe\n    run: {probe!r}\n",
    })
    async with open_sandbox(settings_for(backend, timeout_s=300.0), repo) as box:
        assert box.plan.env_scratch == ["node_modules/.vite-temp"]
        first = (await box.check(repo)).checks[0].output
        second = (await box.check(repo)).checks[0].output
    assert "WROTE-TEMP" in first and "WROTE-NODE-MODULES" not in first, first
    assert "planted" not in second.split("WROTE-TEMP")[0], second  # the earlier run's file is gone
