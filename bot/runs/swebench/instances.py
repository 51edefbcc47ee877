"""SWE-bench instances: the published format, read from JSON or JSONL, validated with errors that name
the file, the line and the instance.

An instance is a bug in a repository at a commit (`base_commit`), described the way an issue describes
it (`problem_statement`, optional `hints_text`); its hidden tests are a diff (`test_patch`) and two
lists of test ids: FAIL_TO_PASS must fail before the fix and pass after it, PASS_TO_PASS must keep
passing. The published datasets store both lists as JSON strings; plain lists are accepted too.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.records import Task

_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_DIFF_PATH = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


class InstanceError(Exception):
    """An instance file that cannot be used: unreadable, malformed, or naming unknown instances."""


class Instance(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    instance_id: str
    repo: str  # owner/name
    base_commit: str
    problem_statement: str
    test_patch: str
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str] = []
    patch: str = ""  # the gold fix: the oracle's answer
    hints_text: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    created_at: str = ""

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        """The published datasets store the lists as JSON strings ("[\\"tests/a.py::t\\"]")."""
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError as exc:
                raise ValueError(f"not a JSON list of test ids: {exc}") from exc
        return value

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        if not _REPO.match(value):
            raise ValueError(f"{value!r} is not owner/name")
        return value

    @field_validator("base_commit")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA.match(value):
            raise ValueError(f"{value!r} is not a commit id (hex)")
        return value

    @field_validator("FAIL_TO_PASS")
    @classmethod
    def _something_to_fix(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("is empty: an instance needs at least one test that the fix makes pass")
        return value

    @property
    def slug(self) -> str:
        """The repository's folder name under --repos: owner__name."""
        return self.repo.replace("/", "__")

    def task(self) -> Task:
        """What the bot is given: the problem statement (its first line the title) and the hints."""
        title, _, body = self.problem_statement.strip().partition("\n")
        if self.hints_text.strip():
            body = f"{body.strip()}\n\nHints:\n{self.hints_text.strip()}"
        return Task(title=title.strip().lstrip("#").strip() or self.instance_id, body=body.strip(),
                    source=f"swebench:{self.instance_id}", repo=self.repo)

    def test_files(self) -> list[str]:
        """The files the hidden test patch touches (what SWE-bench's harness runs)."""
        return patch_files(self.test_patch)


def patch_files(diff: str) -> list[str]:
    """The paths a git diff touches, new side, in order."""
    return list(dict.fromkeys(m.group(2) for m in _DIFF_PATH.finditer(diff)))


def _records(path: Path) -> list[tuple[str, object]]:
    """(where, record) pairs from a JSON list, a JSON object or JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"cannot read instances from {path}: {exc}") from exc
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InstanceError(f"{path} is not valid JSON: {exc}") from exc
        return [(f"{path} item {n}", item) for n, item in enumerate(data, 1)]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((f"{path}:{number}", json.loads(line)))
        except ValueError as exc:
            if number == 1 and stripped.startswith("{"):  # one JSON object over several lines
                try:
                    return [(str(path), json.loads(text))]
                except ValueError:
                    pass
            raise InstanceError(f"{path}:{number} is not a JSON object: {exc}") from exc
    return records


def load_instances(path: Path, *, only: list[str] | None = None, limit: int | None = None) -> list[Instance]:
    """The instances of a JSON or JSONL file, in file order; `only` keeps the named ones (an unknown
    name is an error), `limit` the first N after that."""
    instances: list[Instance] = []
    seen: set[str] = set()
    for where, record in _records(Path(path)):
        name = record.get("instance_id", "?") if isinstance(record, dict) else "?"
        try:
            instance = Instance.model_validate(record)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:5])
            raise InstanceError(f"{where}: instance {name} is not a SWE-bench instance: {problems}") from exc
        if instance.instance_id in seen:
            raise InstanceError(f"{where}: instance {instance.instance_id} appears twice")
        seen.add(instance.instance_id)
        instances.append(instance)
    if not instances:
        raise InstanceError(f"no instances in {path}")
    if only:
        unknown = sorted(set(only) - seen)
        if unknown:
            raise InstanceError(f"no instance {', '.join(unknown)} in {path}")
        instances = [i for i in instances if i.instance_id in only]
    return instances[:limit] if limit is not None else instances


def write_instances(path: Path, instances: list[Instance]) -> None:
    """JSONL, the lists as JSON strings as in the published datasets."""
    lines = []
    for instance in instances:
        record = instance.model_dump()
        record["FAIL_TO_PASS"] = json.dumps(instance.FAIL_TO_PASS)
        record["PASS_TO_PASS"] = json.dumps(instance.PASS_TO_PASS)
        lines.append(json.dumps(record))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def shipped(name: str) -> Path:
    """A suite shipped with aura-sicd: "real" (bug fixes of real projects) or "toys" (the twelve toy programs)."""
    return Path(str(files("bot.runs.swebench") / "data" / f"{name}.jsonl"))


def shipped_repos() -> Path:
    """The toy programs' repositories, as bundles (the real projects' are in tests/data/realrepos/)."""
    return Path(str(files("bot.runs.swebench") / "data" / "repos"))
