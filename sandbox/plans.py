"""Check plans: what to install and which checks to run, detected from a repository's files.

A plan is an ordered list of named checks plus the setup commands that prepare the environment. The
repository's `.github/aura-sicd.yml` may override `setup`, `checks` and `image`, and set the time limits.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox.ci_config import ci_test_command
from sandbox.errors import RepoConfigError
from sandbox.python_env import python_setup, read_pyproject
from sandbox.repo_config import CONFIG_PATH, Command, RepoCheck, SandboxRepoConfig, load_sandbox_config

Parser = Literal["pytest", "go", "node", "cargo", "surefire", "phpunit", "rspec", "minitest", "none"]

# files whose content decides the prepared environment (the cache key of the setup phase)
DEPENDENCY_PATTERNS = [
    "pyproject.toml", "setup.cfg", "setup.py", "requirements*.txt", "requirements/*.txt", "tests/requirements*.txt",
    "test/requirements*.txt", "constraints*.txt",
    "Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock",
    "package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
    "go.mod", "go.sum", ".pre-commit-config.yaml",
    "Cargo.toml", "Cargo.lock", "*/Cargo.toml", "pom.xml", "*/pom.xml", "build.gradle", "build.gradle.kts",
    "settings.gradle", "settings.gradle.kts", "gradle/libs.versions.toml", "gradle/wrapper/gradle-wrapper.properties",
    "Gemfile", "Gemfile.lock", "*.gemspec", "composer.json", "composer.lock",
]

DEFAULT_TEST_TIMEOUT_S = 60.0
DETECTED = "detected"
REPO_CONFIG = CONFIG_PATH
# in a check's command, replaced by the plan's per-test limit in milliseconds; an argument holding it is left
# out when the plan has no per-test limit
TEST_TIMEOUT_MS = "{test_timeout_ms}"
NODE_CACHE = "/tmp/node-cache"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, in the image and on the host
VITE_TEMP = "node_modules/.vite-temp"  # vite (and vitest) write the bundled config here

# skipped by the syntax check: hidden directories, virtualenvs, node_modules
_COMPILE_EXCLUDE = r"[/\\](\.[^/\\]+|node_modules|venv|env|__pypackages__)([/\\]|$)"


class CheckSpec(BaseModel):
    name: str
    command: list[str]
    parser: Parser = "none"
    required: bool = True
    timeout_s: float | None = Field(None, gt=0)
    env: dict[str, str] = Field(default_factory=dict)  # for this check only (what the CI sets for its test step)


class Plan(BaseModel):
    language: Literal["python", "javascript", "go", "rust", "java", "ruby", "php"]
    # where the test command comes from: "detected", ".github/aura-sicd.yml", or the CI file, job and step
    source: str = DETECTED
    setup: list[list[str]] = Field(default_factory=list)
    checks: list[CheckSpec]
    image: str | None = None
    dependency_files: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # for setup and checks
    env_links: list[str] = Field(default_factory=list)  # top-level workspace names kept in the environment
    # for the setup only and not part of its cache key: the version from git changes with every commit,
    # and an editable install does not need its metadata to follow
    setup_env: dict[str, str] = Field(default_factory=dict)
    # written before each check run unless they exist; paths relative to the workspace (the version files
    # of setuptools-scm) or absolute under /tmp
    check_files: dict[str, str] = Field(default_factory=dict)
    # directories of the environment (relative to ENV_DIR, made by the setup) that checks may write, each an
    # empty writable mount per session while the rest stays read-only: vite bundles its config into
    # node_modules/.vite-temp, where the bundle's own imports resolve from node_modules
    env_scratch: list[str] = Field(default_factory=list)
    test_timeout_s: float = Field(DEFAULT_TEST_TIMEOUT_S, ge=0)  # per pytest test; 0: no per-test limit
    check_timeout_s: float | None = Field(None, gt=0)  # per check without its own; None: the settings' limit
    selected_tests: list[str] | None = None  # the run is narrowed to these tests (sandbox/selection.py)

    def dependency_hash(self, repo_dir: Path, *extra: str) -> str:
        """Cache key of the setup phase: the dependency files, the setup commands and `extra` (base image...)."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"setup": self.setup, "env": self.env, "links": self.env_links,
                                  "extra": extra}, sort_keys=True).encode())
        for rel in self.dependency_files:
            digest.update(f"\0{rel}\0".encode())
            digest.update((Path(repo_dir) / rel).read_bytes())
        return digest.hexdigest()


def shell(command: Command) -> list[str]:
    return ["sh", "-c", command] if isinstance(command, str) else list(command)


def dependency_files(repo_dir: Path) -> list[str]:
    found: set[str] = set()
    for pattern in DEPENDENCY_PATTERNS:
        found.update(p.relative_to(repo_dir).as_posix() for p in repo_dir.glob(pattern) if p.is_file())
    return sorted(found)


# --- Python -----------------------------------------------------------------------------------------------


def _tool(pyproject: dict) -> dict:
    tool = pyproject.get("tool")
    return tool if isinstance(tool, dict) else {}


def _ruff_configured(repo_dir: Path, pyproject: dict) -> bool:
    return (repo_dir / "ruff.toml").is_file() or (repo_dir / ".ruff.toml").is_file() or "ruff" in _tool(pyproject)


def _mypy_config(repo_dir: Path, pyproject: dict) -> dict | None:
    """The mypy settings when the repository configures mypy, else None."""
    if "mypy" in _tool(pyproject):
        mypy = _tool(pyproject)["mypy"]
        return mypy if isinstance(mypy, dict) else {}
    for name in ("mypy.ini", ".mypy.ini", "setup.cfg"):
        path = repo_dir / name
        if path.is_file():
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read_string(path.read_text(encoding="utf-8"))
            except (configparser.Error, UnicodeDecodeError):
                continue
            if parser.has_section("mypy"):
                return dict(parser.items("mypy"))
    return None


_SKIPPED_DIRS = {".git", ".tox", ".nox", ".venv", "venv", "node_modules", "build", "dist", "__pycache__"}


def _has_pytest_files(repo_dir: Path) -> bool:
    """Whether pytest's default discovery finds a test file (test_*.py or *_test.py) anywhere."""
    for path in repo_dir.rglob("*.py"):
        if _SKIPPED_DIRS.isdisjoint(path.relative_to(repo_dir).parts) and \
                (path.name.startswith("test_") or path.name.endswith("_test.py")):
            return True
    return False


def pytest_targets(repo_dir: Path) -> list[str]:
    """What pytest is given to run: nothing (its own discovery) unless the project keeps its tests in a
    file discovery misses — `test.py` or `tests.py` at the top, as python-slugify does."""
    loose = [name for name in ("test.py", "tests.py") if (repo_dir / name).is_file()]
    if not loose or _has_pytest_files(repo_dir):
        return []
    return loose


def python_plan(repo_dir: Path, version: str | None = None) -> Plan:
    pyproject = read_pyproject(repo_dir)
    lint = ["ruff", "check", "--no-cache", "--output-format", "concise"]
    if not _ruff_configured(repo_dir, pyproject):
        lint += ["--select", "E9,F63,F7,F82"]  # errors only: syntax, undefined names, broken comparisons
    checks = [
        CheckSpec(name="syntax", command=["python", "-m", "compileall", "-q", "-x", _COMPILE_EXCLUDE, "."]),
        CheckSpec(name="lint", command=[*lint, "."]),
    ]
    mypy = _mypy_config(repo_dir, pyproject)
    if mypy is not None:
        targets = [] if mypy.get("files") else ["."]
        checks.append(CheckSpec(name="types", command=["python", "-m", "mypy", "--cache-dir", "/tmp/mypy-cache", *targets]))
    checks.append(CheckSpec(name="tests", command=["python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                   *pytest_targets(repo_dir)], parser="pytest"))
    setup = python_setup(repo_dir, dependency_files(repo_dir), version)
    return Plan(language="python", setup=setup.commands, setup_env=setup.env, check_files=setup.workspace_files,
                checks=checks)


# --- JavaScript / TypeScript ------------------------------------------------------------------------------


def javascript_install(repo_dir: Path) -> list[str]:
    """npm, following its lock file; yarn or pnpm for their lock files when the sandbox has them."""
    if (repo_dir / "package-lock.json").is_file() or (repo_dir / "npm-shrinkwrap.json").is_file():
        return ["npm", "ci", "--no-audit", "--no-fund"]
    npm = "npm install --no-audit --no-fund"
    if (repo_dir / "yarn.lock").is_file():
        return ["sh", "-c", f"if command -v yarn >/dev/null 2>&1; then yarn install --frozen-lockfile; else {npm}; fi"]
    if (repo_dir / "pnpm-lock.yaml").is_file():
        return ["sh", "-c", f"if command -v pnpm >/dev/null 2>&1; then pnpm install --frozen-lockfile; else {npm}; fi"]
    return ["npm", "install", "--no-audit", "--no-fund"]


_SHELL_SYNTAX = re.compile(r"[;&|<>`$()\\]")


def javascript_test_command(package: dict) -> list[str]:
    """`npm test`, or the test script itself with a per-test limit when it runs node's test runner, which
    has none by default (jest, vitest, mocha and ava have their own, which CI uses as they are). Only a
    script that is one plain `node --test ...` command without pre/post scripts is run directly."""
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    script = scripts.get("test")
    npm_test = ["npm", "test", "--silent"]
    if not isinstance(script, str) or _SHELL_SYNTAX.search(script) or "pretest" in scripts or "posttest" in scripts:
        return npm_test
    words = script.split()
    if words[:1] != ["node"] or "--test" not in words or any(w.startswith("--test-timeout") for w in words):
        return npm_test
    return ["node", f"--test-timeout={TEST_TIMEOUT_MS}", *words[1:]]


def javascript_plan(repo_dir: Path) -> Plan:
    try:
        package = json.loads((repo_dir / "package.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RepoConfigError(f"package.json is not valid JSON: {exc}") from exc
    if not isinstance(package, dict):
        raise RepoConfigError("package.json must hold a JSON object")
    deps = {**package.get("dependencies", {}), **package.get("devDependencies", {})}
    setup: list[list[str]] = []
    if deps:
        # node_modules is read-only during checks: its .cache (xo, ava, babel) leads to the writable /tmp, and
        # .vite-temp is a writable mount of its own (env_scratch)
        cache_link = (f"rm -rf node_modules/.cache && ln -s {NODE_CACHE} node_modules/.cache"
                      f" && mkdir -p {VITE_TEMP}")
        setup = [javascript_install(repo_dir), ["sh", "-c", cache_link]]
    checks = []
    if (repo_dir / "tsconfig.json").is_file() and "typescript" in deps:
        checks.append(CheckSpec(name="types", command=["npx", "--no-install", "tsc", "--noEmit"]))
    checks.append(CheckSpec(name="tests", command=javascript_test_command(package), parser="node"))
    if not setup:
        return Plan(language="javascript", checks=checks)
    # find-cache-dir and its successors take CACHE_DIR over node_modules/.cache
    # Node trusts its own CA list, not the system's: behind a registry proxy with its own CA (the image has the
    # machine's bundle) the install failed with SELF_SIGNED_CERT_IN_CHAIN, where pip and uv succeed
    return Plan(language="javascript", setup=setup, checks=checks, env={"CACHE_DIR": NODE_CACHE},
                env_links=["node_modules"], check_files={f"{NODE_CACHE}/.keep": ""}, env_scratch=[VITE_TEMP],
                setup_env={"NODE_EXTRA_CA_CERTS": SYSTEM_CA_BUNDLE})


# --- Go ---------------------------------------------------------------------------------------------------


_GO_PACKAGE = re.compile(r"^package\s+(\w+)", re.MULTILINE)
_GO_IMPORT = re.compile(r'"([\w.-]+\.[a-z]{2,}/[\w./-]+)"')


def go_module_path(repo_dir: Path) -> str:
    """The import path of a Go package kept without go.mod (the GOPATH era): as its own external tests
    import it, else a local name."""
    names = {m for f in repo_dir.glob("*.go") if not f.name.endswith("_test.go")
             for m in _GO_PACKAGE.findall(f.read_text(encoding="utf-8", errors="replace"))}
    for test in sorted(repo_dir.glob("*_test.go")):
        for path in _GO_IMPORT.findall(test.read_text(encoding="utf-8", errors="replace")):
            if path.rsplit("/", 1)[-1] in names:
                return path
    return f"local/{repo_dir.resolve().name}"


def go_plan(repo_dir: Path) -> Plan:
    if not (repo_dir / "go.mod").is_file():
        # module mode needs a go.mod: the checks get one, the repository is not changed
        module = f"module {go_module_path(repo_dir)}\n\ngo 1.13\n"
        plan = go_plan_with_module(repo_dir)
        return plan.model_copy(update={"check_files": {"go.mod": module}})
    return go_plan_with_module(repo_dir)


_GO_LINE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE)
def go_required(repo_dir: Path) -> str | None:
    """The version in go.mod's `go` line (`1.21.0`), or None."""
    path = repo_dir / "go.mod"
    match = _GO_LINE.search(path.read_text(encoding="utf-8", errors="replace")) if path.is_file() else None
    return match.group(1) if match else None


def go_plan_with_module(repo_dir: Path) -> Plan:
    setup = [["go", "mod", "download"]] if (repo_dir / "go.sum").is_file() else []
    env = {"GOMODCACHE": "/opt/aura-env/gomod", "GOCACHE": "/tmp/go-build", "GOFLAGS": "-mod=readonly",
           "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    checks = [
        CheckSpec(name="vet", command=["go", "vet", "./..."]),
        CheckSpec(name="tests", command=["go", "test", "-json", "./..."], parser="go"),
    ]
    return Plan(language="go", setup=setup, checks=checks, env=env)


# --- detection --------------------------------------------------------------------------------------------


def _default_parser(command: list[str]) -> Parser:
    text = " ".join(command)
    if "pytest" in text:
        return "pytest"
    if "cargo test" in text:
        return "cargo"
    # these read their runner's report when the command writes it to $AURA_SICD_REPORT, else its summary
    if re.search(r"\b(mvn|mvnw|gradle|gradlew)\b", text):
        return "surefire"
    if re.search(r"\bphpunit\b", text):
        return "phpunit"
    if re.search(r"\brspec\b", text):
        return "rspec"
    if "go test" in text and "-json" in text:
        return "go"
    if re.search(r"\b(npm|npx|yarn|pnpm|node|jest|vitest|mocha)\b", text):
        return "node"
    return "none"


def _check_from_config(check: RepoCheck) -> CheckSpec:
    command = shell(check.run)
    return CheckSpec(name=check.name, command=command, parser=check.parser or _default_parser(command),
                     required=check.required, timeout_s=check.timeout_s)


def apply_config(plan: Plan, config: SandboxRepoConfig) -> Plan:
    update: dict = {}
    if config.setup is not None:
        commands = [config.setup] if isinstance(config.setup, str) else config.setup
        update["setup"] = [shell(c) for c in commands]
    if config.checks is not None:
        update["checks"] = [_check_from_config(c) for c in config.checks]
        update["source"] = REPO_CONFIG
    if config.image is not None:
        update["image"] = config.image
    if config.test_timeout_s is not None:
        update["test_timeout_s"] = config.test_timeout_s
    if config.check_timeout_s is not None:
        update["check_timeout_s"] = config.check_timeout_s
    return plan.model_copy(update=update)


def with_ci_tests(plan: Plan, repo_dir: Path) -> Plan:
    """The plan with its `tests` check running the command the project's CI runs, when its CI says."""
    found = ci_test_command(repo_dir, plan.language)
    if found is None or not any(c.name == "tests" for c in plan.checks):
        return plan
    checks = [c.model_copy(update={"command": found.command, "parser": _default_parser(found.command),
                                   "env": found.env}) if c.name == "tests" else c for c in plan.checks]
    return plan.model_copy(update={"checks": checks, "source": found.source})


def _other_language_plan(repo_dir: Path) -> Plan | None:
    """Rust, Java, PHP or Ruby from their build files; these win over a package.json kept for assets."""
    # imported here: the language modules build on this module's Plan and CheckSpec
    from sandbox.languages import java, php, ruby, rust

    def exists(*names: str) -> bool:
        return any((repo_dir / name).is_file() for name in names)

    if exists("Cargo.toml"):
        return rust.rust_plan(repo_dir)
    if exists("pom.xml", "build.gradle", "build.gradle.kts"):
        return java.java_plan(repo_dir)
    if exists("composer.json", "phpunit.xml", "phpunit.xml.dist"):
        return php.php_plan(repo_dir)
    if exists("Gemfile") or any(repo_dir.glob("*.gemspec")) or ruby.has_specs(repo_dir) or ruby.has_minitests(repo_dir):
        return ruby.ruby_plan(repo_dir)
    return None


def detect_plan(repo_dir: Path, *, version: str | None = None) -> Plan:
    """The plan for a repository: by language (Go, Rust, Java, PHP, Ruby, JavaScript/TypeScript, else
    Python; a Python project's markers win over the other languages but Go's), then the overrides
    of `.github/aura-sicd.yml`. `version` is the project's version from git tags, for projects that take
    it from there (see sandbox/git_version.py); None: unknown."""
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        raise RepoConfigError(f"{repo_dir} is not a directory")
    config = load_sandbox_config(repo_dir)
    python_markers = any((repo_dir / n).is_file() for n in ("pyproject.toml", "setup.py", "setup.cfg"))
    other = None if python_markers else _other_language_plan(repo_dir)
    if (repo_dir / "go.mod").is_file() or (any(repo_dir.glob("*.go")) and not python_markers):
        plan = go_plan(repo_dir)
    elif other is not None:
        plan = other
    elif (repo_dir / "package.json").is_file() and not python_markers:
        plan = javascript_plan(repo_dir)
    else:
        plan = python_plan(repo_dir, version)
    plan = apply_config(with_ci_tests(plan, repo_dir), config)
    return plan.model_copy(update={"dependency_files": dependency_files(repo_dir)})
