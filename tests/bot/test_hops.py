"""Localization follows one hop: what the located code uses (module-level names, class attributes, helpers,
imported constants) is shown with it, within the section's budget. On real projects (the bundles of
tests/data/realrepos/) and on small inputs for each rule."""

from __future__ import annotations

from pathlib import Path


from bot.context import RepoIndex, build_generator_context
from bot.context.hops import used_definitions
from bot.context.localize import HOPS_TITLE, locate, located_body
from bot.llm.tokens import count_tokens
from bot.records import Task
from bot.runs.realtasks import shown_lines
from tests.bot.conftest import RealRepos
from tests.bot.test_context import write



def test_a_located_python_function_brings_the_module_constants_and_helpers_it_uses(real_repos: RealRepos) -> None:
    repo = real_repos.at("tomli", "master", "55e97ee^")
    index = RepoIndex.build(repo)
    task = Task(title="`parse_inline_table` accepts a value overwriting a table")
    located = locate(index, task)
    assert located[0].symbol.qualname == "parse_inline_table"
    used = {s.qualname: s.kind for s in used_definitions(index, [located[0].symbol])}
    assert used.get("TOML_WS") == "variable" and used.get("skip_chars") == "function"
    shown = shown_lines(build_generator_context(index, task, budget_tokens=6000).render())["tomli/_parser.py"]
    assert 'TOML_WS = frozenset(" \\t")' in shown
    assert "def skip_chars(state: ParseState, chars: Iterable[str]) -> None:" in shown


def test_a_go_function_brings_the_package_variable_it_matches_with(real_repos: RealRepos) -> None:
    """hashicorp/go-version before 96e1d5e ("fix regexp"): NewVersion matches with versionRegexp."""
    repo = real_repos.at("go-version", "main", "96e1d5e^")
    index = RepoIndex.build(repo)
    located = [s for s in index.symbols("version.go") if s.qualname == "NewVersion"]
    used = [s.qualname for s in used_definitions(index, located)]
    assert "versionRegexp" in used
    constant = next(s for s in index.symbols("version.go") if s.name == "VersionRegexpRaw")
    assert constant.kind == "variable" and constant.end > constant.start  # the `+`-continued raw string whole


PARSER = '''\
import re

from .patterns import QUOTED


class Splitter:
    DELIMITERS = re.compile(r"[;,]")
    unrelated = 3

    def split(self, text):
        parts = self.DELIMITERS.split(text)
        return [_clean(p) for p in parts if not QUOTED.match(p)]


def _clean(part):
    return part.strip()


def big_unrelated():
    return 1
'''


def test_class_attributes_same_file_helpers_and_imported_constants_are_followed(tmp_path: Path) -> None:
    write(tmp_path, {"pkg/parser.py": PARSER, "pkg/patterns.py": 'QUOTED = __import__("re").compile(r"^\\"")\n',
                     "tests/test_parser.py": "QUOTED = 1\n"})
    index = RepoIndex.build(tmp_path)
    method = next(s for s in index.symbols("pkg/parser.py") if s.qualname == "Splitter.split")
    used = [(s.path, s.qualname) for s in used_definitions(index, [method], is_test=lambda p: p.startswith("tests/"))]
    assert used == [("pkg/parser.py", "Splitter.DELIMITERS"), ("pkg/patterns.py", "QUOTED"),
                    ("pkg/parser.py", "_clean")]


def test_what_the_code_uses_is_shown_after_it_and_within_the_budget(tmp_path: Path) -> None:
    write(tmp_path, {"pkg/parser.py": PARSER, "pkg/patterns.py": 'QUOTED = __import__("re").compile(r"^\\"")\n'})
    index = RepoIndex.build(tmp_path)
    located = locate(index, Task(title="`Splitter.split` splits inside quotes"))
    body = located_body(index, located, 400, {})
    assert count_tokens(body) <= 400
    assert body.index("def split(self, text):") < body.index(HOPS_TITLE) < body.index('DELIMITERS = re.compile(r"[;,]")')
    assert "def _clean(part):" in body and "big_unrelated" not in body
    tight = located_body(index, located, 90, {})
    assert count_tokens(tight) <= 90 and "def split(self, text):" in tight  # the located code comes first
