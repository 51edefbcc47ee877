"""Real projects' setups and checks with bubblewrap, from the git bundles in tests/data/realrepos. The
setup needs PyPI (or npm's registry); afterwards the environments are cached."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox import CheckStatus, open_sandbox
from sandbox.parsers import strip_ansi

from .conftest import settings_for

pytestmark = pytest.mark.bwrap

BUNDLES = Path(__file__).parent.parent / "data" / "realrepos"
# the setup installs and mypy and the test suites run: room beyond the hostile tests' small limits
REAL_LIMITS = {"memory_mb": 2048, "pids": 512, "timeout_s": 300.0}


def clone(name: str, branch: str, dest: Path) -> Path:
    target = dest / name
    subprocess.run(["git", "clone", "-q", "-b", branch, str(BUNDLES / f"{name}.bundle"), str(target)],
                   check=True, capture_output=True, timeout=120)
    return target


async def test_itsdangerous_collects_its_tests_with_the_dependency_group(bwrap_settings, tmp_path):
    repo = clone("itsdangerous", "main", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert {"freezegun", "pytest"} <= set(box.plan.setup[0])  # [dependency-groups] tests
        report = await box.check(repo)
        freezegun = await box.run(["python", "-c", "import freezegun"])
    assert freezegun.ok, freezegun.output
    tests = report.check("tests")
    assert tests.status == CheckStatus.PASSED, report.summary()
    assert tests.tests.passed > 250 and tests.tests.errors == 0
    assert report.pass_rate == 1.0


async def test_humanize_installs_with_its_version_from_git(bwrap_settings, tmp_path):
    repo = clone("humanize", "main", tmp_path)  # 5 commits after the tag 4.16.0
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.setup_env == {"SETUPTOOLS_SCM_PRETEND_VERSION": "4.16.1.dev5"}
        report = await box.check(repo)
        version = await box.run(["python", "-c", "import importlib.metadata as m, humanize; "
                                 "print(m.version('humanize'), humanize.__version__)"])
    assert version.ok, version.output
    assert version.output.split() == ["4.16.1.dev5", "4.16.1.dev5"]
    assert not (repo / "src/humanize/_version.py").exists()  # written in the sandbox's copy only
    tests = report.check("tests")
    assert tests.status == CheckStatus.PASSED, report.summary()
    assert tests.tests.passed > 500 and report.pass_rate == 1.0


async def test_go_module_uuid(bwrap_settings, tmp_path):
    if shutil.which("go") is None:
        pytest.skip("go is not installed on this host")
    repo = clone("uuid", "master", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        report = await box.check(repo)
    assert report.all_green, report.summary()
    assert report.check("tests").tests.passed >= 10 and report.pass_rate == 1.0


async def test_javascript_camelcase_with_xo_ava_and_tsd(bwrap_settings, tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed on this host")
    repo = clone("camelcase", "main", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.setup[0] == ["npm", "install", "--no-audit", "--no-fund"]  # no lock file
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.PASSED, report.summary()  # xo writes to node_modules/.cache
    assert tests.tests.passed == 20 and report.pass_rate == 1.0


async def test_go_package_without_go_mod_pkg_errors(bwrap_settings, tmp_path):
    """pkg/errors predates Go modules: the checks get a go.mod naming the path its own tests import."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed on this host")
    repo = clone("errors", "master", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.language == "go"
        assert box.plan.check_files == {"go.mod": "module github.com/pkg/errors\n\ngo 1.13\n"}
        report = await box.check(repo)
    assert not (repo / "go.mod").exists()  # written in the sandbox's copy only
    tests = report.check("tests")
    assert tests.tests.run > 20, report.summary()  # the package built and its tests ran
    assert report.check("vet").status == CheckStatus.PASSED, report.summary()


async def test_rust_crate_fnv(bwrap_settings, tmp_path):
    """servo/rust-fnv: a crate without dependencies, unit tests and a module's doc tests."""
    if shutil.which("cargo", path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.skip("cargo is not installed under /usr (Debian package: cargo)")
    repo = clone("fnv", "main", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.language == "rust" and box.plan.setup == []
        report = await box.check(repo)
    tests = report.check("tests")
    assert tests.status == CheckStatus.PASSED, report.summary()
    assert tests.tests.passed == 4 and report.pass_rate == 1.0  # 2 unit tests, 2 doc tests


async def test_a_project_the_check_tools_depend_on_is_tested_from_its_own_code(bwrap_settings, tmp_path):
    """mypy_extensions is a dependency of mypy: the repository's module, not the tools' copy, is imported,
    from any directory (an editable install's .pth once came after the tools' on the import path)."""
    repo = clone("mypy_extensions", "master", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        where = await box.run(["sh", "-c", "cd tests && python -c 'import mypy_extensions as m, pytest as p; "
                               "print(m.__file__, p.__file__)'"])
        tests = await box.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testextensions.py"])
    assert where.ok, where.output
    module, runner = where.output.split()
    assert module == "/workspace/mypy_extensions.py"
    assert runner.startswith("/opt/aura-env/venv/")  # the test runner lives in the project's environment
    assert tests.ok and "12 passed" in tests.output, tests.output


async def test_vitest_writes_its_bundled_config_while_node_modules_stays_read_only(bwrap_settings, tmp_path):
    """pillarjs/path-to-regexp: vitest bundles vitest.config.mts into node_modules/.vite-temp (so that the
    bundle's imports resolve from node_modules); that directory is a writable mount of its own, and the
    rest of node_modules stays read-only to the checks."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed on this host")
    repo = clone("path-to-regexp", "master", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.env_scratch == ["node_modules/.vite-temp"]
        vitest = await box.run(["npx", "vitest", "run", "src/index.spec.ts", "--reporter=dot"])
        writes = await box.run(["sh", "-c", "touch node_modules/.vite-temp/x && ! touch node_modules/x"])
    # before: "failed to load config ... EROFS: read-only file system, mkdir '/workspace/node_modules/.vite-temp'"
    assert vitest.ok, vitest.output[-3000:]
    assert re.search(r"Tests\W+\d+ passed", strip_ansi(vitest.output)), vitest.output[-3000:]
    assert writes.ok, writes.output


async def test_a_ruby_project_whose_ci_tests_without_bundler_is_set_up_without_its_gemfile(bwrap_settings, tmp_path):
    """ruby/rake: its test workflow runs `gem install test-unit` and `ruby -Ilib exe/rake`, never Bundler; its
    Gemfile's development group (rubocop, coveralls, rdoc) is for other jobs. The sandbox does not install
    the Gemfile either, so the tests run with Ruby's own test-unit and no registry is needed."""
    if shutil.which("ruby", path="/usr/bin:/bin") is None:
        pytest.skip("ruby is not installed under /usr (Debian package: ruby)")
    repo = clone("rake", "master", tmp_path)
    async with open_sandbox(settings_for("bwrap", **REAL_LIMITS), repo) as box:
        assert box.plan.language == "ruby" and box.plan.setup == []
        assert box.plan.checks[0].command[:2] == ["ruby", "-Ilib"]  # no `bundle exec`
        done = await box.run(["ruby", "-Ilib", "exe/rake", "test"])
        report = await box.check(repo)
    assert done.ok, done.output[-3000:]
    tests = report.check("tests")  # test-unit's summary, read by the minitest parser
    assert tests.status == CheckStatus.PASSED and tests.tests.passed > 600, report.summary()
    assert re.search(r"\b6\d\d tests, \d+ assertions, 0 failures, 0 errors", done.output), done.output[-2000:]
