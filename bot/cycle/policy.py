"""What a proposal may touch, checked before anything is applied, and how risky it looks.

Path rules are globs with gitignore-like semantics (see `glob_matches`). A violation is never applied:
its sentence goes back to the generator as guidance. The risk score is documented in docs/reward.md.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from bot.config import DEFAULT_DENY, Settings
from bot.path_kinds import is_test_path
from bot.edits import UnsafePathError, nested_files, normalize_rel_path, safe_path, writable_path
from bot.records import Change, ChangeType, PolicyDecision, Proposal
from sandbox.repo_config import CONFIG_PATH

# --- globs ---------------------------------------------------------------------------------------


def _translate_segment(segment: str) -> str:
    """One path segment of a glob as a regex: `*` and `?` never cross a `/`."""
    out, i = [], 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1  # `**` inside a segment ("a**b") is a plain `*`
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = segment[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^/" + body[1:]  # a negated class still never matches a slash
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a gitignore-style glob.

    - `**` as a whole segment matches any number of directories (zero included): `**/*.pem` matches
      `a.pem` and `x/y/a.pem`; `docs/**` matches everything under docs/.
    - A pattern without a `/` (other than a trailing one) matches the file name at any depth:
      `*.pem` behaves like `**/*.pem`.
    - A leading `/` anchors to the repository root (as every pattern with a slash is anyway); a trailing
      `/` means a directory (and so everything under it).
    - `*` and `?` never match `/`; `[abc]`, `[!abc]` are character classes. Dotfiles are not special.
    """
    text = pattern.strip()
    if not text:
        raise ValueError("an empty glob pattern matches nothing; remove it")
    anchored = "/" in text.rstrip("/")
    text = text.strip("/")
    if not anchored and text != "**":
        text = "**/" + text
    segments = text.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            if last:
                parts.append(".*" if index == 0 else "/.*")
            else:
                parts.append("(?:.*/)?" if index == 0 else "/(?:.*/)?")
            continue
        previous_was_globstar = index > 0 and segments[index - 1] == "**"
        if index > 0 and not previous_was_globstar:
            parts.append("/")
        parts.append(_translate_segment(segment))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def glob_matches(pattern: str, path: str) -> bool:
    """Whether a repository-relative path (or one of its directories, as in gitignore) matches."""
    regex = glob_regex(pattern)
    if regex.match(path):
        return True
    parents = PurePosixPath(path).parents
    return any(regex.match(str(parent)) for parent in parents if str(parent) != ".")


def first_match(patterns: list[str], path: str) -> str | None:
    return next((p for p in patterns if glob_matches(p, path)), None)


# --- risk ----------------------------------------------------------------------------------------

CI_PATTERNS = [".github/**", ".gitlab-ci.yml", ".circleci/**", "Jenkinsfile", ".ci/**", "azure-pipelines.yml",
               ".pre-commit-config.yaml", ".travis.yml"]
BUILD_PATTERNS = ["pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "requirements/**", "Pipfile*",
                  "poetry.lock", "uv.lock", "package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml",
                  "Cargo.toml", "Cargo.lock", "go.mod", "go.sum", "Dockerfile*", "docker-compose*.yml",
                  "Makefile", "tox.ini", "noxfile.py", "MANIFEST.in", "*.gemspec", "Gemfile*", "pom.xml",
                  "build.gradle*"]
CONFIG_PATTERNS = ["*.yml", "*.yaml", "*.ini", "*.cfg", "*.toml", "*.conf", ".env*", "*.json", "alembic/**",
                   "**/migrations/**", "conftest.py"]
CODE_SUFFIXES = {".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".rb", ".php", ".c", ".h",
                 ".cc", ".cpp", ".hpp", ".cs", ".swift", ".scala", ".sh"}

# weight of each factor; combined as 1 - prod(1 - w), so every factor raises the score and none alone
# makes it 1 except a forbidden path (documented in docs/reward.md)
RISK_WEIGHTS = {
    "forbidden_path": 1.0,  # denied, outside the allowed paths, or unsafe
    "ci": 0.45,  # CI configuration: runs with the repository's secrets
    "build": 0.35,  # dependencies and build files: affects every install
    "config": 0.15,  # other configuration
    "delete": 0.15,  # per deleted file, compounded
    "size": 0.40,  # scaled by lines added / max_lines_added (capped at 1)
    "spread": 0.25,  # scaled by files changed / max_files_changed (capped at 1)
    "untested": 0.20,  # code changed, no test file changed
}


def combine_risk(factors: dict[str, float]) -> float:
    """Noisy-OR of factor strengths in [0, 1]."""
    remaining = 1.0
    for strength in factors.values():
        remaining *= 1.0 - min(1.0, max(0.0, strength))
    return round(1.0 - remaining, 4)


# --- the policy ----------------------------------------------------------------------------------


def _lines(text: str | None) -> int:
    return len(text.splitlines()) if text else 0


def estimate_lines(change: Change, root: Path) -> tuple[int, int]:
    """(added, removed) estimated from the proposal alone: per edit, replace lines minus search lines."""
    if change.change_type is ChangeType.CREATE:
        return _lines(change.new_content), 0
    if change.change_type is ChangeType.DELETE:
        try:
            existing = safe_path(root, change.file_path)
            return 0, _lines(existing.read_text(encoding="utf-8", errors="replace")) if existing.is_file() else 0
        except (UnsafePathError, OSError):
            return 0, 0
    added = removed = 0
    for edit in change.edits:
        delta = _lines(edit.replace) - _lines(edit.search)
        added += max(0, delta)
        removed += max(0, -delta)
    return added, removed


# never changed by a proposal, whatever the operator's or the repository's lists say: the bot's own
# configuration defines the checks, the setup and these very lists
ALWAYS_DENY = [CONFIG_PATH]


class Policy(BaseModel):
    allow_paths: list[str] = Field(default_factory=lambda: ["**"])
    deny_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_DENY))
    max_lines_added: int = Field(800, ge=1)
    max_files_changed: int = Field(20, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            allow_paths=list(settings.allow_paths),
            deny_paths=list(settings.deny_paths),
            max_lines_added=settings.max_lines_added,
            max_files_changed=settings.max_files_changed,
        )

    def path_violation(self, rel: str, root: Path) -> str | None:
        """Why the path may not be changed, or None."""
        try:
            writable_path(root, rel)  # inside the repository, and no symbolic link on the way
            norm = normalize_rel_path(rel)
        except UnsafePathError as exc:
            return str(exc)
        if denied := first_match([*ALWAYS_DENY, *self.deny_paths], norm):
            return (
                f"Changing `{norm}` is not allowed: it matches the protected pattern `{denied}`. "
                "Leave this file alone and reach the goal through other files."
            )
        if not first_match(self.allow_paths, norm):
            allowed = ", ".join(f"`{p}`" for p in self.allow_paths) or "nothing"
            return (
                f"Changing `{norm}` is not allowed: only paths matching {allowed} may be changed. "
                "Put the change in one of those places."
            )
        return None

    def evaluate(self, proposal: Proposal, root: Path) -> PolicyDecision:
        """Check a proposal before it is applied: paths, size, number of files; and score its risk."""
        violations: list[str] = []
        paths: list[str] = []
        forbidden = False
        added = removed = deletes = 0
        for change in proposal.changes:
            reason = self.path_violation(change.file_path, root)
            if reason:
                forbidden = True
                if reason not in violations:
                    violations.append(reason)
            try:
                norm = normalize_rel_path(change.file_path)
            except UnsafePathError:
                norm = change.file_path
            if norm not in paths:
                paths.append(norm)
            plus, minus = estimate_lines(change, root)
            added, removed = added + plus, removed + minus
            deletes += change.change_type is ChangeType.DELETE

        kept = [normalize_rel_path(c.file_path) for c in proposal.changes
                if c.change_type is not ChangeType.DELETE and not self.path_violation(c.file_path, root)]
        if conflict := nested_files(kept):
            violations.append(conflict)
        if added > self.max_lines_added:
            violations.append(
                f"The proposal adds about {added} lines, above the limit of {self.max_lines_added}. "
                "Make a smaller change that solves the task, or solve it in steps."
            )
        if len(paths) > self.max_files_changed:
            violations.append(
                f"The proposal changes {len(paths)} files, above the limit of {self.max_files_changed}. "
                "Change fewer files."
            )

        factors = self.risk_factors(paths, added=added, deletes=deletes, forbidden=forbidden)
        return PolicyDecision(
            allowed=not violations,
            violations=violations,
            risk_score=combine_risk(factors),
            files_changed=len(paths),
            lines_added=added,
            lines_removed=removed,
        )

    def risk_factors(self, paths: list[str], *, added: int, deletes: int, forbidden: bool) -> dict[str, float]:
        """Each present factor with its strength (weight x degree); see RISK_WEIGHTS."""
        w = RISK_WEIGHTS
        factors: dict[str, float] = {}
        if forbidden:
            factors["forbidden_path"] = w["forbidden_path"]
        if any(first_match(CI_PATTERNS, p) for p in paths):
            factors["ci"] = w["ci"]
        if any(first_match(BUILD_PATTERNS, p) for p in paths):
            factors["build"] = w["build"]
        if any(first_match(CONFIG_PATTERNS, p) and not first_match(CI_PATTERNS + BUILD_PATTERNS, p) for p in paths):
            factors["config"] = w["config"]
        if deletes:
            factors["delete"] = 1.0 - (1.0 - w["delete"]) ** deletes
        if added:
            factors["size"] = w["size"] * min(1.0, added / self.max_lines_added)
        if paths:
            factors["spread"] = w["spread"] * min(1.0, len(paths) / self.max_files_changed)
        code = [p for p in paths if PurePosixPath(p).suffix in CODE_SUFFIXES and not is_test_path(p)]
        if code and not any(is_test_path(p) for p in paths):
            factors["untested"] = w["untested"]
        return factors
