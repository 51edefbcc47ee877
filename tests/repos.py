"""Real git repositories for tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.records import Task

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: dict[str, str], *, message: str = "initial") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root


CALC_FILES = {
    "calc.py": 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n',
    "tests/test_calc.py": "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    "README.md": "# calc\n\nA tiny calculator.\n",
}

# The calc repository's scenario, as the fake models answer it: the fix, a wrong fix, the reviewers' replies.
GEN, DISC = "qwen2.5-coder:7b", "qwen2.5:7b"  # the default generator and reviewer models
CALC_TASK = Task(title="add() returns the wrong result", body="add(2, 3) should be 5.", repo="calc")


def calc_update(search: str, replace: str, rationale: str = "add must add its operands") -> dict:
    """A generator reply (JSON search/replace) that edits calc.py once."""
    return {
        "summary": f"Replace `{search.strip()}` with `{replace.strip()}`",
        "changes": [{"file_path": "calc.py", "change_type": "update", "edits": [{"search": search, "replace": replace}],
                     "new_content": None, "rationale": rationale}],
    }


RIGHT_FIX = calc_update("    return a - b", "    return a + b")
WRONG_FIX = calc_update("    return a - b", "    return a * b", "multiplying gives the sum")
NO_CHANGE = {"summary": "add already adds; nothing to do", "changes": []}
GOOD_RUBRIC = {"coverage": 0.8, "accuracy": 0.95, "coherence": 0.9, "formatting": 0.9, "issues": [], "comments": ["fine"]}
WEAK_RUBRIC = {"coverage": 0.3, "accuracy": 0.2, "coherence": 0.6, "formatting": 0.9, "issues": ["add multiplies"],
               "comments": []}
