"""The import rules of docs/architecture.md: nothing imports upward.

Each folder (or top-level module) of `bot/`, and `webhooks/`, sits in one layer; a module may import its
own folder and the layers below its own, never a layer above nor a sibling in its layer. Imports inside
functions count as much as those at the top: a late import hides a cycle, it does not remove it.
`sandbox/` is usable on its own: it imports nothing of `bot/` or `webhooks/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# top to bottom; a unit is `bot.<folder or module>` or `webhooks`
LAYERS: list[set[str]] = [
    {"bot.__main__"},  # `python -m bot`
    {"bot.cli"},  # the command line
    {"bot.commands"},  # its command groups
    {"webhooks"},  # the GitHub App's HTTP side
    {"bot.jobs", "bot.mcp"},  # the durable job; the loop as MCP tools
    {"bot.runs"},  # drivers of many episodes: scan, training, eval, swebench
    {"bot.cycle"},  # one episode: loop, steps, baseline, reward, policy
    {"bot.roles", "bot.learning"},  # the three roles; what an episode learns from and feeds
    {"bot.context", "bot.edit_formats"},  # the generator's prompt and how it writes changes
    {"bot.llm"},  # the model layer
    {"bot.pr_body"},  # the PR's text (model text made inert by bot.github.text)
    {"bot.github", "bot.store", "bot.events", "bot.edits"},  # GitHub, the database, plumbing
    {"bot.records", "bot.config", "bot.workspace"},  # data at the boundaries, settings, git worktrees
    {"bot.verdict_records"},  # the verdict's records (Comparison, Judgment, TestImpact), carried by IterationRecord
    {"bot.path_kinds"},  # what a path is to the tests
    {"bot", "bot.errors"},  # the version; errors that cross layers
]
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}
PROJECT = ("bot", "webhooks", "sandbox")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import of the project in `path` (or `source`, as if it were there), at
    any depth of the code."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(source or path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from bot import cycle` imports the package bot.cycle
                found.append((node.lineno, f"{module}.{alias.name}" if is_module(f"{module}.{alias.name}") else module))
    return [(line, name) for line, name in found if name.split(".")[0] in PROJECT]


def unit_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "bot":
        return parts[0]
    return "bot" if len(parts) == 1 else f"bot.{parts[1]}"


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_every_unit_of_bot_has_a_layer():
    units = {unit_of(module_name(p)) for p in sources("bot", "webhooks")}
    assert units - set(LAYER_OF) == set(), "a new folder of bot/: give it a layer here and a line in docs/architecture.md"


def test_nothing_imports_upward():
    upward = []
    for path in sources("bot", "webhooks"):
        here = unit_of(module_name(path))
        for line, module in imported_modules(path):
            there = unit_of(module)
            if there == "sandbox" or there == here:
                continue
            if LAYER_OF[there] <= LAYER_OF[here]:
                which = "a sibling" if LAYER_OF[there] == LAYER_OF[here] else "a layer above"
                upward.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {module} ({which})")
    assert not upward, "imports against docs/architecture.md's layers:\n" + "\n".join(upward)


def test_the_sandbox_imports_nothing_of_bot_or_webhooks():
    found = [f"{path.relative_to(ROOT)}:{line}: {module}"
             for path in sources("sandbox") for line, module in imported_modules(path)
             if unit_of(module) != "sandbox"]
    assert not found, "sandbox/ imports:\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("from bot.cycle import baseline\n", "bot.cycle.baseline"),
    ("def f():\n    from bot.llm.client import ModelClient\n", "bot.llm.client"),
    ("import webhooks.app\n", "webhooks.app"),
    ("from .baseline import compare\n", "bot.cycle.baseline"),
    ("from . import reward\n", "bot.cycle.reward"),
])
def test_imports_are_found_at_any_depth(source, expected):
    assert [name for _, name in imported_modules(ROOT / "bot" / "cycle" / "loop.py", source)] == [expected]


@pytest.mark.parametrize("old_module, name", [
    ("bot.cycle.baseline", "Comparison"), ("bot.cycle.judging", "Judgment"), ("bot.cycle.gate", "TestImpact"),
    ("bot.cycle.impact", "Selection"),
])
def test_a_step_output_recorded_before_the_verdicts_records_moved_still_loads(old_module, name):
    """DBOS pickles a step's output (`check`, `judge`), naming each class by its module: a job recorded
    before these records moved to bot/verdict_records.py resumes with them."""
    import pickle

    from bot.verdict_records import Comparison, Judgment, Selection, TestImpact

    record = {"Comparison": Comparison(new_failures=["t::a"]), "Judgment": Judgment(blockers=["tampers"]),
              "TestImpact": TestImpact(selection=Selection(out_of=3), full_run_s=1.5),
              "Selection": Selection(full_suite_only="go")}[name]
    # protocol 0 names a class as text, so the module can be put back as it was
    recorded = pickle.dumps(record, protocol=0).replace(b"bot.verdict_records\n", old_module.encode() + b"\n")
    assert old_module.encode() in recorded
    assert pickle.loads(recorded) == record
