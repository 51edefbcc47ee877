"""The project's own test command, read from its CI configuration: GitHub Actions workflows first, then
tox.ini, noxfile.py and the Makefile (a workflow's `tox -e py`, `nox -s tests` or `make test` is followed
into them).

Nothing here runs anything: a workflow's `run:` lines are read, and only a line that is recognisably a test
run (pytest, unittest, `go test`, an npm script) becomes the sandbox's test command, rewritten to run in
the sandbox: wrappers (`uv run`, `uvx tox`, `poetry run`, `coverage run`) and report options (coverage,
JUnit, xdist) are dropped, matrix variables take their first value, and a line with anything else it
cannot resolve (`${{ secrets.X }}`, `$VAR`, pipes) is passed over. Jobs for deploys, releases, docs, lint
and benchmarks are never read.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
from pathlib import Path

from pydantic import BaseModel, Field

SKIPPED_JOBS = re.compile(r"deploy|release|publish|docs?\b|documentation|lint|bench|pages|label|stale|codeql"
                          r"|pre-commit|typing|mypy|coverage-report|changelog", re.IGNORECASE)
_FACTOR = re.compile(r"^[\w,{}!-]+:\s")  # tox's `coverage: command`
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_SHELL = re.compile(r"[|;&<>`]|\$\(|\$[A-Za-z_{]")
# options of reporting plugins, which change no outcome and may not be installed: (prefix, takes a value)
_DROPPED = [("--cov-report", True), ("--cov-fail-under", True), ("--cov-config", True), ("--cov", False),
            ("--junitxml", True), ("--junit-xml", True), ("--html", True), ("--numprocesses", True), ("-n", True),
            ("--dist", True), ("--basetemp", True), ("--codspeed", False), ("--benchmark-", False)]
_WRAPPERS = {("uv", "run"), ("poetry", "run"), ("pdm", "run"), ("hatch", "run"), ("pipx", "run"), ("pipenv", "run")}


class CiTest(BaseModel):
    command: list[str]
    source: str  # where it was read, e.g. ".github/workflows/tests.yml: job tests, step 'Run tests'"
    env: dict[str, str] = Field(default_factory=dict)  # what the CI sets for that step


def ci_test_command(repo_dir: Path, language: str) -> CiTest | None:
    """The test command the project's CI runs, for `language` (python, javascript, go), or None."""
    if language not in ("python", "javascript", "go"):
        return None
    reader = _Reader(Path(repo_dir), language)
    return reader.from_workflows() or reader.from_tox(None, "tox.ini") or reader.from_nox(None) \
        or reader.from_make(None, "Makefile")


def _logical_lines(script: str) -> list[str]:
    return [line.strip() for line in re.sub(r"\\\n\s*", " ", script).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _split(line: str) -> list[str] | None:
    if _SHELL.search(line):
        return None
    try:
        return shlex.split(line)
    except ValueError:
        return None


def _without_reporting(args: list[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        dropped = next(((p, v) for p, v in _DROPPED if arg == p or arg.startswith(p + "=")
                        or (p.endswith("-") and arg.startswith(p)) or (p == "--cov" and arg.startswith("--cov"))),
                       None)
        if dropped is None:
            kept.append(arg)
        elif arg == dropped[0] and (dropped[1] or arg == "--cov"):
            skip_next = True  # --cov's value is optional: a word after it is taken as its value
    return kept


class _Reader:
    def __init__(self, repo_dir: Path, language: str):
        self.repo_dir = repo_dir
        self.language = language

    # --- GitHub Actions -----------------------------------------------------------------------------------

    def from_workflows(self) -> CiTest | None:
        import yaml

        folder = self.repo_dir / ".github" / "workflows"
        files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
        files.sort(key=lambda f: "test" not in f.name.lower())  # tests.yml before ci.yml before the rest
        for path in files:
            if SKIPPED_JOBS.search(path.stem):
                continue
            try:
                workflow = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
            except yaml.YAMLError:
                continue
            if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
                continue
            jobs = sorted(workflow["jobs"].items(), key=lambda kv: "test" not in str(kv[0]).lower())
            for job_id, job in jobs:
                if not isinstance(job, dict) or SKIPPED_JOBS.search(f"{job_id} {job.get('name', '')}"):
                    continue
                found = self._from_job(path, workflow, str(job_id), job)
                if found is not None:
                    return found
        return None

    def _from_job(self, path: Path, workflow: dict, job_id: str, job: dict) -> CiTest | None:
        matrix = _first_matrix_values(job)
        where = f"{path.relative_to(self.repo_dir).as_posix()}: job {job_id}"
        for step in job.get("steps") or []:
            if not isinstance(step, dict) or not isinstance(step.get("run"), str):
                continue
            env = {**_env(workflow.get("env"), matrix), **_env(job.get("env"), matrix), **_env(step.get("env"), matrix)}
            for line in _logical_lines(step["run"]):
                resolved = _resolve_expressions(line, matrix)
                argv = _split(resolved) if resolved is not None else None
                step_name = f"{where}, step {step.get('name') or line[:40]!r}"
                found = self._test_from_argv(argv, step_name, env) if argv else None
                if found is not None:
                    return found.model_copy(update={"env": {**env, **found.env}})
        return None

    # --- one command line -----------------------------------------------------------------------------------

    def _test_from_argv(self, argv: list[str], source: str, env: dict[str, str]) -> CiTest | None:
        argv = _unwrap(argv)
        if not argv:
            return None
        program = argv[0].rsplit("/", 1)[-1]
        if program == "tox":
            return self.from_tox(_tox_env(argv[1:]) or env.get("TOX_ENV"), f"{source} -> tox.ini")
        if program == "nox":
            return self.from_nox(_option(argv[1:], ("-s", "--session", "-e")), source)
        if program == "make":
            targets = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
            return self.from_make(targets[0] if targets else None, f"{source} -> Makefile")
        command = self._test_command(argv)
        return CiTest(command=command, source=source) if command else None

    def _test_command(self, argv: list[str]) -> list[str] | None:
        """`argv` as the sandbox runs it, when it is a test run of this language."""
        program = argv[0].rsplit("/", 1)[-1]
        if self.language == "python":
            if program in ("coverage", "python-coverage") and argv[1:2] == ["run"]:
                rest = [a for a in argv[2:] if not a.startswith("-") or a == "-m"]  # --source=x, --branch...
                argv, program = ["python", *rest], "python"
            if program in ("pytest", "py.test"):
                return ["python", "-m", "pytest", *_without_reporting(argv[1:])]
            if re.fullmatch(r"python[\d.]*", program) and "-m" in argv[1:-1]:
                at = argv.index("-m")
                options, module, rest = argv[1:at], argv[at + 1], argv[at + 2:]
                if all(o.startswith("-") for o in options) and module == "pytest":
                    return ["python", *options, "-m", "pytest", *_without_reporting(rest)]
                if all(o.startswith("-") for o in options) and module == "unittest":
                    targets = self._unittest_as_pytest(rest)
                    return None if targets is None else ["python", *options, "-m", "pytest", *targets]
            if re.fullmatch(r"python[\d.]*", program) and len(argv) == 2 and self._is_test_script(argv[1]):
                return ["python", "-m", "pytest", argv[1]]  # a unittest.main() script, as pytest collects it
            return None
        if self.language == "javascript":
            if program in ("npm", "pnpm", "yarn") and argv[1:2] in (["test"], ["t"]) and len(argv) == 2:
                return ["npm", "test", "--silent"]
            if program in ("npm", "pnpm", "yarn") and len(argv) == 3 and argv[1] in ("run", "run-script") \
                    and "test" in argv[2]:
                return ["npm", "run", "--silent", argv[2]]
            return None
        if self.language == "go" and program == "go" and argv[1:2] == ["test"]:
            flags = [a for a in argv[2:] if a not in ("-v", "-race", "-json") and not a.startswith(("-cover", "-coverprofile"))]
            return ["go", "test", "-json", *flags]
        return None

    def _is_test_script(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return name.endswith(".py") and name.startswith("test") and (self.repo_dir / path).is_file()

    def _unittest_as_pytest(self, args: list[str]) -> list[str] | None:
        """unittest's command line as pytest's, which runs the same TestCases and reports each by id:
        `discover [-s DIR] [-p PATTERN]` (default test*.py), or modules, classes and methods by dotted name."""
        args = [a for a in args if a not in ("-v", "--verbose", "-q", "--quiet", "-b", "--buffer", "-c", "--catch")]
        args = ["-x" if a in ("-f", "--failfast") else a for a in args]
        if not args or args[0] == "discover" or all(a.startswith("-") for a in args):
            rest = args[1:] if args and args[0] == "discover" else args
            start = _option(rest, ("-s", "--start-directory"))
            pattern = _option(rest, ("-p", "--pattern")) or "test*.py"
            positional = [a for i, a in enumerate(rest) if not a.startswith("-")
                          and (i == 0 or rest[i - 1] not in ("-s", "--start-directory", "-p", "--pattern", "-t",
                                                             "--top-level-directory"))]
            start = start or (positional[0] if positional else None)
            pattern = positional[1] if len(positional) > 1 else pattern
            fail_fast = ["-x"] if "-x" in rest else []
            return [*fail_fast, *([start] if start and start != "." else []), "-o", f"python_files={pattern}"]
        targets = []
        for arg in args:
            if arg.startswith("-"):
                if arg != "-x":
                    return None  # -k and the like mean other things to pytest
                targets.append(arg)
                continue
            if arg.endswith(".py") or "/" in arg:
                targets.append(arg)
                continue
            parts = arg.split(".")
            for cut in range(len(parts), 0, -1):  # the longest prefix that is a module file
                module = "/".join(parts[:cut])
                if (self.repo_dir / f"{module}.py").is_file() or (self.repo_dir / module / "__init__.py").is_file():
                    path = f"{module}.py" if (self.repo_dir / f"{module}.py").is_file() else module
                    targets.append("::".join([path, *parts[cut:]]))
                    break
            else:
                return None
        return targets

    # --- tox, nox, make -------------------------------------------------------------------------------------

    def from_tox(self, env_name: str | None, source: str) -> CiTest | None:
        path = self.repo_dir / "tox.ini"
        if self.language != "python" or not path.is_file():
            return None
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(path.read_text(encoding="utf-8"))
        except (configparser.Error, UnicodeDecodeError):
            return None
        if env_name is None:  # no -e: the first Python environment of the env list
            listed = re.split(r"[\s,]+", parser.get("tox", "envlist", fallback="")
                              or parser.get("tox", "env_list", fallback=""))
            env_name = next((e for e in listed if re.match(r"py(\d|$|\{)", e)), "py")
        if SKIPPED_JOBS.search(env_name):
            return None
        section = f"testenv:{env_name}" if parser.has_section(f"testenv:{env_name}") else "testenv"
        if not parser.has_section(section):
            return None
        env = {}
        for line in parser.get(section, "setenv", fallback="").splitlines():
            if _FACTOR.match(line.strip()):
                continue  # a factor-conditional line (`coverage: X=1`): not the plain environment's
            key, _, value = line.partition("=")
            if key.strip() and "{" not in value:
                env[key.strip()] = value.strip()
        for line in _logical_lines(parser.get(section, "commands", fallback="")):
            if _FACTOR.match(line):
                continue
            line = re.sub(r"\{(?:posargs|env:\w+):?([^}]*)\}", r"\1", line).replace("{envpython}", "python")
            argv = [a for a in (_split(line) or []) if "{" not in a]  # --basetemp={envtmpdir} and the like
            command = self._test_command(argv) if argv else None
            if command:
                return CiTest(command=command, source=f"{source} [{section}]", env=env)
        return None

    def from_nox(self, session: str | None, source: str | None = None) -> CiTest | None:
        path = self.repo_dir / "noxfile.py"
        if self.language != "python" or not path.is_file():
            return None
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            return None
        for function in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
            if (session is not None and function.name != session) or (session is None and "test" not in function.name):
                continue
            for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
                if isinstance(call.func, ast.Attribute) and call.func.attr == "run":
                    argv = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                    command = self._test_command(argv) if argv else None
                    if command:
                        where = f"{source} -> noxfile.py" if source else "noxfile.py"
                        return CiTest(command=command, source=f"{where} session {function.name}")
        return None

    def from_make(self, target: str | None, source: str) -> CiTest | None:
        path = self.repo_dir / "Makefile"
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        rules = re.findall(r"^([\w.-]+)\s*:(?!=)[^\n]*\n((?:\t[^\n]*\n?)*)", text, re.MULTILINE)
        if target is None:
            target = next((t for t, _ in rules if t == "test"), None) if source == "Makefile" else \
                next((t for t, _ in rules if not t.startswith(".")), None)
        for name, recipe in rules:
            if name != target:
                continue
            for line in _logical_lines(recipe.replace("\t", "")):
                line = re.sub(r"\$[({]\w+[)}]", "", line.lstrip("@-")).strip()
                argv = _split(line)
                command = self._test_command(_unwrap(argv)) if argv else None
                if command:
                    where = source if source.endswith("Makefile") else f"{source} -> Makefile"
                    return CiTest(command=command, source=f"{where} target {name}")
        return None


def _unwrap(argv: list[str]) -> list[str]:
    """The command inside `uv run ...`, `uvx --with tox-uv tox ...`, `poetry run ...` and the like."""
    while argv:
        head = argv[0].rsplit("/", 1)[-1]
        if tuple(a.rsplit("/", 1)[-1] for a in argv[:2]) in _WRAPPERS or head in ("uvx", "pipx"):
            rest = argv[1:] if head == "uvx" else argv[2:]
            while rest and rest[0].startswith("-"):  # the wrapper's own options, with their values
                takes_value = rest[0] in ("--with", "--python", "-p", "--from", "--group", "--extra", "-e", "--env")
                rest = rest[2:] if takes_value and "=" not in rest[0] else rest[1:]
            argv = rest
        else:
            return argv
    return argv


def _tox_env(args: list[str]) -> str | None:
    if args[:1] == ["run"]:
        args = args[1:]
    value = _option(args, ("-e", "--env"))
    return value.split(",")[0] if value else None


def _option(args: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        for name in names:
            if arg.startswith(name + "=") or (name.startswith("-") and not name.startswith("--")
                                              and arg.startswith(name) and len(arg) > len(name)):
                return arg[len(name):].lstrip("=")
    return None


def _first_matrix_values(job: dict) -> dict[str, str]:
    strategy = job.get("strategy") if isinstance(job.get("strategy"), dict) else {}
    matrix = strategy.get("matrix") if isinstance(strategy.get("matrix"), dict) else {}
    values = {k: str(v[0]) for k, v in matrix.items() if isinstance(v, list) and v and not isinstance(v[0], dict)}
    include = matrix.get("include")
    if not values and isinstance(include, list) and include and isinstance(include[0], dict):
        values = {k: str(v) for k, v in include[0].items()}
    return values


def _resolve_expressions(line: str, matrix: dict[str, str]) -> str | None:
    """`${{ matrix.x }}` replaced by the matrix's first value; None when another expression remains."""
    def replace(match: re.Match) -> str:
        expression = match.group(1)
        name = expression.removeprefix("matrix.")
        if expression.startswith("matrix.") and name in matrix:
            return matrix[name]
        raise LookupError(expression)

    try:
        return _EXPRESSION.sub(replace, line)
    except LookupError:
        return None


def _env(table, matrix: dict[str, str]) -> dict[str, str]:
    if not isinstance(table, dict):
        return {}
    env = {}
    for key, value in table.items():
        resolved = _resolve_expressions(str(value), matrix) if not isinstance(value, bool) else str(value).lower()
        if resolved is not None:
            env[str(key)] = resolved
    return env
