"""What kind of path this is, for everything that judges a change by its tests: source, a test, test data,
test configuration, or a collection hook. The one classifier the policy, the context and the verdict use.

By name alone (`classify`): tests are `test_*.py`, `*_test.py`, `*_test.go`, `*.test.js`, `*.spec.ts` and
code under `tests/`, `test/`, `__tests__/`, `spec/`; test data is anything else under those folders (and
Go's `testdata/`, snapshots); collection hooks are what runs when the runner starts or collects
(`conftest.py`, `sitecustomize.py`, `.pth` files, `__init__.py` in a test folder, the setup files of JS
runners, a top-level `pytest.py` or `_pytest/` that would shadow the runner); test configuration is what
selects tests and how they run (`pytest.ini`, jest/vitest/mocha configuration, `Makefile`, `noxfile.py`,
the check plan). Files that hold test configuration among other things (`pyproject.toml`, `setup.cfg`,
`tox.ini`, `package.json`, `Cargo.toml`) count as test configuration only when their test part changes:
`selection_settings` extracts that part.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from enum import StrEnum
from pathlib import PurePosixPath


class PathKind(StrEnum):
    SOURCE = "source"
    TEST = "test"
    TEST_DATA = "test data"
    TEST_CONFIG = "test configuration"
    COLLECTION_HOOK = "collection hook"


CODE_SUFFIXES = frozenset(".py .pyi .js .jsx .mjs .cjs .ts .tsx .mts .cts .go .rs .java .kt .rb .php .cs .scala "
                          ".swift .c .cc .cpp .h .hpp".split())
TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "e2e"})
DATA_DIRS = frozenset({"testdata", "fixtures", "__snapshots__", "snapshots", "golden"})
_TEST_NAME = re.compile(r"^(test_.+\.py|.+_test\.(py|go|rs|rb|exs)|.+\.(test|spec)\.[cm]?[jt]sx?|.+_spec\.rb|"
                        r"Test.*\.java|.+Tests?\.(java|kt|php|cs)|tests?\.(py|[cm]?[jt]sx?))$")
_HOOK_NAME = re.compile(r"^(conftest\.py|sitecustomize\.py|usercustomize\.py|.+\.pth|pytest_plugin\.py|"
                        r"(jest|vitest|vite|mocha|ava|karma)\.setup\.[cm]?[jt]s|setup[Tt]ests?\.[cm]?[jt]sx?|"
                        r"test[-_]?setup\.[cm]?[jt]sx?|global[-_]?setup\.[cm]?[jt]s|\.mocharc\..+)$")
_CONFIG_NAME = re.compile(r"^(pytest\.ini|\.pytest\.ini|noxfile\.py|Makefile|GNUmakefile|makefile|justfile|"
                          r"(jest|vitest|vite|karma|ava|playwright|cypress|nyc|c8)\.config\.[cm]?[jt]s(on)?|"
                          r"\.nycrc(\.json)?|\.c8rc(\.json)?|aura-sicd\.ya?ml|\.taprc)$")
# top-level names that `python -m pytest` (the workspace first on sys.path) would import instead of the runner
# (pytest's own repository keeps them under src/; a project laid out like pytest before 2018 would be judged wrongly)
RUNNER_SHADOWS = frozenset({"pytest.py", "pytest", "_pytest", "py.py", "unittest", "unittest.py"})
# files with a test part among other things: what `selection_settings` reads from each
MIXED_CONFIG = frozenset({"pyproject.toml", "setup.cfg", "tox.ini", "package.json", "Cargo.toml"})
_PACKAGE_TEST_KEYS = ("jest", "mocha", "ava", "vitest", "c8", "nyc", "tap")


def classify(path: str) -> PathKind:
    """The kind of a repository-relative path, by its name and folders."""
    pure = PurePosixPath(path)
    name, folders = pure.name, [p.lower() for p in pure.parts[:-1]]
    if _HOOK_NAME.match(name) or (name == "__init__.py" and TEST_DIRS.intersection(folders)) \
            or pure.parts[0] in RUNNER_SHADOWS:
        return PathKind.COLLECTION_HOOK
    if _CONFIG_NAME.match(name) or name in MIXED_CONFIG:
        return PathKind.TEST_CONFIG
    if DATA_DIRS.intersection(folders) or name.endswith(".snap"):
        return PathKind.TEST_DATA
    if _TEST_NAME.match(name) or (name.startswith("test_") and pure.suffix in CODE_SUFFIXES):
        return PathKind.TEST
    if TEST_DIRS.intersection(folders):
        return PathKind.TEST if pure.suffix in CODE_SUFFIXES else PathKind.TEST_DATA
    return PathKind.SOURCE


def is_test_path(path: str) -> bool:
    """A test, its data or a collection hook: what the context ranks after source and a proposal's tests are."""
    return classify(path) in (PathKind.TEST, PathKind.TEST_DATA, PathKind.COLLECTION_HOOK)


def selection_settings(path: str, text: str | None) -> str | None:
    """The part of a configuration file that selects and runs tests, as comparable text; the whole text
    for pure test configuration; None for other paths or a file that is absent."""
    if text is None:
        return None
    name = PurePosixPath(path).name
    if classify(path) is not PathKind.TEST_CONFIG:
        return None
    if name not in MIXED_CONFIG:
        return text
    try:
        if name == "pyproject.toml":
            tool = tomllib.loads(text).get("tool", {})
            return json.dumps({k: tool.get(k) for k in ("pytest", "hatch", "tox", "coverage")}, sort_keys=True)
        if name == "Cargo.toml":
            data = tomllib.loads(text)
            return json.dumps({k: data.get(k) for k in ("features", "test", "lib", "dev-dependencies")}, sort_keys=True)
        if name == "package.json":
            data = json.loads(text)
            scripts = data.get("scripts", {}) if isinstance(data, dict) else {}
            picked = {k: v for k, v in scripts.items() if "test" in k or k in ("pretest", "posttest")}
            return json.dumps({"scripts": picked, **{k: data.get(k) for k in _PACKAGE_TEST_KEYS}}, sort_keys=True)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        sections = [s for s in parser.sections() if s in ("pytest", "tool:pytest") or s.startswith(("testenv", "tox"))]
        return json.dumps({s: dict(parser.items(s)) for s in sections}, sort_keys=True)
    except (ValueError, configparser.Error, AttributeError):
        return text  # unreadable: any change counts


def changes_test_settings(path: str, before: str | None, after: str | None) -> bool:
    """Whether a change of `path` from `before` to `after` (None: absent) changes how tests are selected or run."""
    if classify(path) is not PathKind.TEST_CONFIG:
        return False
    return selection_settings(path, before) != selection_settings(path, after)
