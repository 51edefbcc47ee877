"""Test impact: the import graph and the selection of tests an attempt can affect, on a real project
(humanize, from its bundle) and on small repositories made for the one rule each test is about."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.context.imports import python_graph
from bot.cycle.baseline import Baseline, CheckBaseline
from bot.cycle.impact import select_tests
from bot.workspace import run_git
from sandbox.reports import CheckStatus
from tests.repos import git, make_repo

REALREPOS = Path(__file__).resolve().parents[1] / "data" / "realrepos"

# a package whose __init__ re-exports everything, as most do: importing the package is not depending
# on all of it
PACKAGE = {
    "pkg/__init__.py": "from .shapes import area\nfrom .words import shout\nfrom . import sub\n",
    "pkg/shapes.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.words import shout\n\n\n"
                     "def area(w, h):\n    return w * h\n",
    "pkg/words.py": "def shout(s):\n    return s.upper()\n",
    "pkg/sub/__init__.py": "from .deep import twice\n",
    "pkg/sub/deep.py": "def twice(x):\n    return 2 * x\n",
    "tests/conftest.py": "import pytest\n",
    "tests/test_shapes.py": "from pkg import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n",
    "tests/test_words.py": "import pkg\n\n\ndef test_shout():\n    assert pkg.shout('a') == 'A'\n",
    "tests/test_deep.py": "import pkg\n\n\ndef test_twice():\n    assert pkg.sub.deep.twice(2) == 4\n",
    "tests/test_patch.py": "from unittest import mock\n\n\n@mock.patch('pkg.words.shout')\n"
                           "def test_patched(m):\n    pass\n",
    "README.md": "# pkg\n",
    **{f"tests/test_other{i}.py": "def test_other():\n    assert True\n" for i in range(4)},
}
IMPORTERS = {"tests/test_shapes.py", "tests/test_words.py", "tests/test_deep.py", "tests/test_patch.py"}


def diff_of(repo: Path, changes: dict[str, str]) -> str:
    """Write `changes` into the worktree and return git's diff of them (new files included)."""
    for rel, text in changes.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    run_git(["add", "-A"], repo)
    return run_git(["diff", "--cached"], repo)


def selected(selection) -> dict[str, list[str]]:
    return {t.path: t.reasons for t in selection.tests}


def test_the_graph_follows_names_to_their_module_not_the_whole_package():
    graph = python_graph(PACKAGE)
    assert {p for p in graph.dependents({"pkg/shapes.py"}) if "/test_" in p} == {"tests/test_shapes.py"}
    assert "tests/test_words.py" in graph.dependents({"pkg/words.py"})
    assert "tests/test_shapes.py" not in graph.dependents({"pkg/words.py"})  # only a TYPE_CHECKING import
    assert set(graph.dependents({"pkg/sub/deep.py"})) >= {"tests/test_deep.py"}
    assert "tests/test_words.py" not in graph.dependents({"pkg/sub/deep.py"})
    assert "tests/test_patch.py" in graph.dependents({"pkg/words.py"})  # named in a mock.patch target
    every_test = {p for p in PACKAGE if "/test_" in p}
    assert every_test <= set(graph.dependents({"tests/conftest.py"}))
    assert set(graph.dependents({"pkg/__init__.py"})) == IMPORTERS  # its own code runs for every importer


def test_a_changed_module_selects_the_tests_that_import_it_with_the_reason(tmp_path):
    repo = make_repo(tmp_path / "pkg", PACKAGE)
    diff = diff_of(repo, {"pkg/words.py": "def shout(s):\n    return s.upper() + '!'\n"})
    selection = select_tests(repo, "python", diff, "shout() should add an exclamation mark", None)
    chosen = selected(selection)
    assert set(chosen) == {"tests/test_words.py", "tests/test_patch.py"}
    assert chosen["tests/test_words.py"] == ["imports pkg/words.py", "named after pkg/words.py"]
    assert selection.out_of == 8 and selection.full_suite_only is None
    assert selection.for_sandbox().paths == ["tests/test_patch.py", "tests/test_words.py"]
    assert "tests/test_words.py: imports pkg/words.py; named after pkg/words.py" in selection.summary()


def test_tests_the_attempt_changes_the_task_names_and_the_base_fails_are_chosen(tmp_path):
    repo = make_repo(tmp_path / "pkg", PACKAGE)
    new_test = "from pkg import area\n\n\ndef test_new():\n    assert area(1, 1) == 1\n"
    diff = diff_of(repo, {"tests/test_new.py": new_test})
    baseline = Baseline(format=2, base_sha="x", checks=[CheckBaseline(name="tests", status=CheckStatus.FAILED,
                                                            failing_tests=["tests/test_deep.py::test_twice"])])
    task = "twice() is wrong, test_twice fails; see also tests/test_shapes.py"
    selection = select_tests(repo, "python", diff, task, baseline)
    chosen = selected(selection)
    assert chosen["tests/test_new.py"] == ["the attempt changes it"]
    assert chosen["tests/test_shapes.py"] == ["the task names it"]
    assert chosen["tests/test_deep.py"] == ["the task names test_twice",
                                            "tests/test_deep.py::test_twice fails on the base and relates to the task"]
    assert "tests/test_words.py" not in chosen


@pytest.mark.parametrize("changes, why", [
    ({"pyproject.toml": "[project]\nname = 'pkg'\n"}, "the attempt changes pyproject.toml, which no import leads to"),
    ({"README.md": "# pkg, better\n"}, "no test is known to depend on the change"),
    ({"pkg/__init__.py": "from .shapes import area\nfrom .words import shout\nfrom . import sub\nX = 1\n"},
     "the change reaches 4 of 8 test files"),
])
def test_the_full_suite_runs_at_once_where_a_selection_would_not_help(tmp_path, changes, why):
    repo = make_repo(tmp_path / "pkg", PACKAGE)
    selection = select_tests(repo, "python", diff_of(repo, changes), "a task", None)
    assert selection.full_suite_only == why
    assert selection.for_sandbox() is None


def test_other_languages_fall_back_to_the_full_suite(tmp_path):
    repo = make_repo(tmp_path / "js", {"index.js": "module.exports = 1\n"})
    selection = select_tests(repo, "ruby", diff_of(repo, {"index.js": "module.exports = 2\n"}), "", None)
    assert selection.full_suite_only == "no test selection is known for ruby projects yet"


def test_go_selects_the_changed_package_and_those_that_import_it(tmp_path):
    repo = make_repo(tmp_path / "gomod", {
        "go.mod": "module example.com/shop\n\ngo 1.21\n",
        "price/price.go": "package price\n\nfunc Net(x int) int { return x }\n",
        "price/price_test.go": "package price\n\nimport \"testing\"\n\nfunc TestNet(t *testing.T) {}\n",
        "cart/cart.go": "package cart\n\nimport (\n\t\"fmt\"\n\t\"example.com/shop/price\"\n)\n\n"
                        "func Total() int { fmt.Println(); return price.Net(1) }\n",
        "cart/cart_test.go": "package cart\n\nimport \"testing\"\n\nfunc TestTotal(t *testing.T) {}\n",
        "web/web.go": "package web\n\nimport \"example.com/shop/cart\"\n\nfunc Page() int { return cart.Total() }\n",
        "web/web_test.go": "package web\n\nimport \"testing\"\n\nfunc TestPage(t *testing.T) {}\n",
        "auth/auth.go": "package auth\n\nfunc OK() bool { return true }\n",
        "auth/auth_test.go": "package auth\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
        "log/log.go": "package log\n",
        "log/log_test.go": "package log\n\nimport \"testing\"\n\nfunc TestLog(t *testing.T) {}\n",
    })
    diff = diff_of(repo, {"cart/cart.go": "package cart\n\nimport \"example.com/shop/price\"\n\n"
                                          "func Total() int { return price.Net(2) }\n"})
    chosen = selected(select_tests(repo, "go", diff, "", None))
    assert chosen == {"./cart": ["the attempt changes it"], "./web": ["imports ./cart"]}


@pytest.fixture(scope="module")
def humanize(tmp_path_factory) -> Path:
    into = tmp_path_factory.mktemp("real") / "humanize"
    subprocess.run(["git", "clone", "-q", str(REALREPOS / "humanize.bundle"), str(into)], check=True)
    return into


def test_a_real_project_selects_by_its_imports(humanize):
    text = (humanize / "src/humanize/filesize.py").read_text()
    diff = diff_of(humanize, {"src/humanize/filesize.py": text + "\n\nBINARY_SUFFIXES = ('KiB',)\n"})
    selection = select_tests(humanize, "python", diff, "naturalsize should know KiB", None)
    chosen = selected(selection)
    assert "tests/test_filesize.py" in chosen
    assert "imports src/humanize/filesize.py" in chosen["tests/test_filesize.py"]
    assert "named after src/humanize/filesize.py" in chosen["tests/test_filesize.py"]
    assert not {"tests/test_time.py", "tests/test_number.py", "tests/test_lists.py"} & set(chosen)
    git(humanize, "reset", "-q", "--hard")


WORKSPACE = {
    "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n',
    "crates/money/Cargo.toml": '[package]\nname = "money"\nversion = "0.1.0"\nedition = "2021"\n',
    "crates/money/src/lib.rs": "pub fn cents(x: u32) -> u32 { x * 100 }\n",
    "crates/cart/Cargo.toml": '[package]\nname = "cart"\nversion = "0.1.0"\nedition = "2021"\n\n'
                              '[dependencies]\nmoney = { path = "../money" }\n',
    "crates/cart/src/lib.rs": "pub fn total(x: u32) -> u32 { money::cents(x) }\n",
    "crates/shop/Cargo.toml": '[package]\nname = "shop"\nversion = "0.1.0"\nedition = "2021"\n\n'
                              '[dev-dependencies]\ncart = { path = "../cart" }\n',
    "crates/shop/src/lib.rs": "pub fn open() -> bool { true }\n",
    "crates/auth/Cargo.toml": '[package]\nname = "auth"\nversion = "0.1.0"\nedition = "2021"\n',
    "crates/auth/src/lib.rs": "pub fn ok() -> bool { true }\n",
    "crates/log/Cargo.toml": '[package]\nname = "log2"\nversion = "0.1.0"\nedition = "2021"\n',
    "crates/log/src/lib.rs": "pub fn log() {}\n",
}


def test_rust_selects_the_changed_crate_and_those_that_depend_on_it(tmp_path):
    repo = make_repo(tmp_path / "ws", WORKSPACE)
    diff = diff_of(repo, {"crates/money/src/lib.rs": "pub fn cents(x: u32) -> u32 { x * 100 + 0 }\n"})
    selection = select_tests(repo, "rust", diff, "", None)
    assert selected(selection) == {"money": ["the attempt changes it"], "cart": ["depends on money"],
                                   "shop": ["depends on money (through cart)"]}
    assert selection.full_suite_only == "the change reaches 3 of 5 crates"
    git(repo, "reset", "-q", "--hard")
    diff = diff_of(repo, {"crates/cart/src/lib.rs": "pub fn total(x: u32) -> u32 { money::cents(x) + 0 }\n"})
    assert select_tests(repo, "rust", diff, "", None).for_sandbox().paths == ["cart", "shop"]
    git(repo, "reset", "-q", "--hard")
    lock = select_tests(repo, "rust", diff_of(repo, {"Cargo.toml": WORKSPACE["Cargo.toml"] + "\n"}), "", None)
    assert lock.full_suite_only == "the attempt changes the workspace's Cargo.toml"


@pytest.mark.parametrize("script, runner", [("jest --ci", "jest"), ("vitest", "vitest"),
                                            ("vitest --reporter=verbose", "vitest"), ("node --test", None),
                                            ("vitest run", None), ("jest && eslint .", None)])
def test_jest_and_vitest_are_handed_the_changed_files(tmp_path, script, runner):
    repo = make_repo(tmp_path / "js", {"package.json": '{"scripts": {"test": "%s"}}' % script,
                                       "src/sum.js": "module.exports = (a, b) => a + b\n"})
    selection = select_tests(repo, "javascript", diff_of(repo, {"src/sum.js": "module.exports = (a, b) => b + a\n"}),
                             "", None)
    if runner is None:
        assert selection.for_sandbox() is None and selection.full_suite_only
    else:
        narrowed = selection.for_sandbox()
        assert (narrowed.related, narrowed.paths) == (runner, ["src/sum.js"])


def test_a_name_a_package_defines_depends_on_what_its_definition_reads_not_the_whole_subpackage():
    files = {
        "app/__init__.py": "from app import util\n\nsettings = util.config.load()\n",
        "app/util/__init__.py": "from . import config, heavy\n",
        "app/util/config.py": "def load():\n    return {}\n",
        "app/util/heavy.py": "def crunch():\n    return 1\n",
        "tests/test_settings.py": "from app import settings\n\n\ndef test_settings():\n    assert settings == {}\n",
    }
    graph = python_graph(files)
    assert "tests/test_settings.py" in graph.dependents({"app/util/config.py"})
    assert "tests/test_settings.py" not in graph.dependents({"app/util/heavy.py"})
