"""What the MCP tools may touch: repositories under the roots, a reviewed file inside its throwaway repository."""

from __future__ import annotations

import pytest

from bot.mcp.feedback import FeedbackInputError, relative_file_path
from bot.mcp.results import PathOutsideRoots, Roots


def test_paths_resolve_inside_the_roots_only(tmp_path):
    (tmp_path / "src" / "app").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "src" / "escape").symlink_to(tmp_path / "elsewhere")
    roots = Roots([tmp_path / "src"])

    assert roots.resolve("app") == tmp_path / "src" / "app"  # relative: from the first root
    assert roots.resolve(str(tmp_path / "src" / "app")) == tmp_path / "src" / "app"
    for outside in ("../elsewhere", str(tmp_path), "escape", "/"):
        with pytest.raises(PathOutsideRoots, match="outside the roots"):
            roots.resolve(outside)
    with pytest.raises(PathOutsideRoots, match="started without --root"):
        Roots([]).resolve("app")
    with pytest.raises(ValueError, match="is not a directory"):
        Roots([tmp_path / "missing"])


@pytest.mark.parametrize("path", ["/etc/passwd", "../a.py", "a/../../b.py", ".git/config", "", "  "])
def test_a_reviewed_file_stays_inside_its_repository(path):
    with pytest.raises(FeedbackInputError, match="relative path"):
        relative_file_path(path)


def test_the_bot_configuration_is_not_code_to_review():
    assert relative_file_path("src\\app.py") == "src/app.py"
    with pytest.raises(FeedbackInputError, match="the bot's configuration"):
        relative_file_path(".github/aura-sicd.yml")
