"""bot.cycle.policy: the glob matcher, path rules, size limits and the risk score."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_DENY, Settings
from bot.cycle.policy import Policy, combine_risk, glob_matches, is_test_path
from bot.records import Change, ChangeType, Edit, Proposal


def update(path: str, search: str = "a\n", replace: str = "b\n") -> Change:
    return Change(file_path=path, change_type=ChangeType.UPDATE, edits=[Edit(search=search, replace=replace)])


def create(path: str, content: str = "x = 1\n") -> Change:
    return Change(file_path=path, change_type=ChangeType.CREATE, new_content=content)


def delete(path: str) -> Change:
    return Change(file_path=path, change_type=ChangeType.DELETE)


def proposal(*changes: Change) -> Proposal:
    return Proposal(summary="test", changes=list(changes))


# --- globs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.pem", "a.pem", True),
        ("**/*.pem", "x/y/a.pem", True),
        ("**/*.pem", "a.pem.txt", False),
        ("*.pem", "deep/dir/key.pem", True),  # no slash: any depth, as in gitignore
        (".github/workflows/**", ".github/workflows/ci.yml", True),
        (".github/workflows/**", ".github/workflows/sub/deploy.yml", True),
        (".github/workflows/**", ".github/dependabot.yml", False),
        (".github/workflows/**", "x/.github/workflows/ci.yml", False),  # a slash anchors to the root
        ("**/.env*", ".env", True),
        ("**/.env*", "sub/.env.local", True),
        ("**/.env*", "sub/env.py", False),
        ("secrets/**", "secrets/db/password.txt", True),
        ("secrets/**", "app/secrets/x", False),
        ("secrets/**", "secrets", False),  # `dir/**` is what is inside
        ("secrets/", "secrets/key", True),  # a trailing slash: the directory and its content
        ("/setup.py", "setup.py", True),
        ("/setup.py", "pkg/setup.py", False),
        ("**", "anything/at/all.py", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),  # `*` never crosses a slash
        ("src/**/test_*.py", "src/test_a.py", True),  # `**` matches zero directories
        ("src/**/test_*.py", "src/a/b/test_a.py", True),
        ("docs", "docs/guide/index.md", True),  # a matching directory covers its content
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        ("[!a]*.py", "b.py", True),
        ("[!a]*.py", "a.py", False),
        ("[ab].py", "b.py", True),
        ("a.b", "axb", False),  # regex characters are literal
    ],
)
def test_glob_matches(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


def test_empty_glob_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty glob"):
        glob_matches("  ", "a.py")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("tests/test_a.py", True), ("pkg/test_b.py", True), ("web/a.spec.ts", True), ("go/x_test.go", True),
     ("conftest.py", True), ("pkg/contest.py", False), ("src/app.py", False)],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


# --- rules ---------------------------------------------------------------------------------------


def test_from_settings() -> None:
    policy = Policy.from_settings(Settings(max_lines_added=100, max_files_changed=3, allow_paths=["src/**"]))
    assert policy.allow_paths == ["src/**"]
    assert policy.deny_paths == DEFAULT_DENY
    assert (policy.max_lines_added, policy.max_files_changed) == (100, 3)


def test_allowed_small_change(tmp_path: Path) -> None:
    decision = Policy().evaluate(proposal(update("src/app.py", "a\n", "a\nb\nc\n"), create("tests/test_app.py")),
                                 tmp_path)
    assert decision.allowed and decision.violations == []
    assert decision.files_changed == 2
    assert decision.lines_added == 3  # 2 from the edit, 1 from the new file


@pytest.mark.parametrize(
    ("path", "pattern"),
    [(".github/workflows/ci.yml", ".github/workflows/**"), ("deploy/server.pem", "**/*.pem"),
     ("config/.env.production", "**/.env*"), ("secrets/token.txt", "secrets/**")],
)
def test_default_deny(tmp_path: Path, path: str, pattern: str) -> None:
    decision = Policy().evaluate(proposal(update(path)), tmp_path)
    assert not decision.allowed
    assert decision.violations == [
        f"Changing `{path}` is not allowed: it matches the protected pattern `{pattern}`. "
        "Leave this file alone and reach the goal through other files."
    ]


def test_outside_allow_list(tmp_path: Path) -> None:
    decision = Policy(allow_paths=["src/**", "tests/**"]).evaluate(proposal(create("scripts/x.py")), tmp_path)
    assert not decision.allowed
    assert "only paths matching `src/**`, `tests/**` may be changed" in decision.violations[0]


@pytest.mark.parametrize("path", ["../escape.py", "/abs.py", ".git/config"])
def test_unsafe_paths_are_violations(tmp_path: Path, path: str) -> None:
    decision = Policy().evaluate(proposal(create(path)), tmp_path)
    assert not decision.allowed
    assert decision.risk_score == 1.0


def test_symlink_escape_is_a_violation(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "out").mkdir()
    (root / "lib").symlink_to(tmp_path / "out", target_is_directory=True)
    decision = Policy().evaluate(proposal(create("lib/x.py")), root)
    assert not decision.allowed
    assert "symbolic link" in decision.violations[0]


def test_lines_added_estimate_and_limit(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text("1\n2\n3\n")
    big_edit = update("src/a.py", "x\ny\n", "".join(f"line {i}\n" for i in range(12)))  # +10
    shrink = update("src/b.py", "p\nq\nr\n", "p\n")  # -2, counted as 0 added
    decision = Policy(max_lines_added=15).evaluate(
        proposal(big_edit, shrink, create("src/c.py", "a\nb\nc\nd\ne\nf\n"), delete("old.py")), tmp_path
    )
    assert decision.lines_added == 16
    assert decision.lines_removed == 5  # 2 from the shrinking edit, 3 from the deleted file
    assert not decision.allowed
    assert decision.violations == [
        "The proposal adds about 16 lines, above the limit of 15. "
        "Make a smaller change that solves the task, or solve it in steps."
    ]


def test_files_changed_limit_counts_distinct_paths(tmp_path: Path) -> None:
    changes = [update("src/a.py"), update("./src/a.py", "c\n", "d\n"), update("src/b.py"), update("src/c.py")]
    decision = Policy(max_files_changed=2).evaluate(proposal(*changes), tmp_path)
    assert decision.files_changed == 3
    assert decision.violations == ["The proposal changes 3 files, above the limit of 2. Change fewer files."]


def test_empty_proposal(tmp_path: Path) -> None:
    decision = Policy().evaluate(proposal(), tmp_path)
    assert decision.allowed and decision.risk_score == 0.0 and decision.files_changed == 0


# --- risk ----------------------------------------------------------------------------------------


def test_combine_risk() -> None:
    assert combine_risk({}) == 0.0
    assert combine_risk({"a": 0.5, "b": 0.5}) == 0.75
    assert combine_risk({"a": 1.0, "b": 0.2}) == 1.0


def test_risk_score_ordering(tmp_path: Path) -> None:
    policy = Policy()

    def risk(*changes: Change) -> float:
        decision = policy.evaluate(proposal(*changes), tmp_path)
        assert 0.0 <= decision.risk_score <= 1.0
        return decision.risk_score

    docs = risk(update("docs/guide.md"))
    tested_code = risk(update("src/app.py"), update("tests/test_app.py"))
    untested_code = risk(update("src/app.py"))
    config = risk(update("src/app.py"), update("tests/test_app.py"), update("settings.yaml"))
    dependencies = risk(update("src/app.py"), update("tests/test_app.py"), update("pyproject.toml"))
    ci = risk(update("src/app.py"), update("tests/test_app.py"), update(".github/dependabot.yml"))
    deletes = risk(update("src/app.py"), update("tests/test_app.py"), delete("src/old.py"), delete("src/older.py"))
    forbidden = risk(update(".github/workflows/ci.yml"))

    assert docs < tested_code < untested_code
    assert tested_code < config < dependencies < ci < forbidden == 1.0
    assert tested_code < deletes

    small = risk(update("src/app.py", "a\n", "a\nb\n"), update("tests/test_app.py"))
    large = risk(update("src/app.py", "a\n", "x\n" * 600), update("tests/test_app.py"))
    assert small < large
    few = risk(update("src/a.py"), update("tests/test_a.py"))
    many = risk(*(update(f"src/m{i}.py") for i in range(10)), update("tests/test_a.py"))
    assert few < many
