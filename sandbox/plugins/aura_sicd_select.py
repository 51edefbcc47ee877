"""aura-sicd's test selection for pytest. The sandbox copies this file into the sandbox, puts it on
PYTHONPATH and loads it with `-p aura_sicd_select` when a run is narrowed to some test files.

AURA_SICD_SELECT names a file listing the selected test files, one a line, relative to the directory
pytest starts in. Every other file, and every directory that holds no selected file, is skipped at
collection: a large suite is not even imported. Conftest files and package `__init__` files are never
skipped, so the selected files' fixtures load as in a full run.
"""

from __future__ import annotations

import os
from pathlib import Path

_ALWAYS = ("conftest.py", "__init__.py")
_selected: set[Path] = set()
_parents: set[Path] = set()


def pytest_configure(config) -> None:
    listing = os.environ.get("AURA_SICD_SELECT")
    if not listing:
        return
    start = Path(config.invocation_params.dir)
    with open(listing, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                path = (start / line.strip()).resolve()
                _selected.add(path)
                _parents.update(path.parents)


def pytest_ignore_collect(collection_path, config):
    if not _selected:
        return None
    path = Path(collection_path).resolve()
    if path in _selected or path in _parents:
        return None
    if path.is_dir():
        return True if not any(parent in _selected for parent in path.parents) else None
    if path.name in _ALWAYS or any(parent in _selected for parent in path.parents):
        return None  # a file inside a selected directory
    return True
