"""Whole-file changes from the admin API as the applier's operations, applied to a real directory."""

from __future__ import annotations

import pytest

from bot.edits import apply_changes
from bot.cycle.policy import Policy
from bot.records import ChangeType, Proposal
from webhooks.admin_models import ProposedChange
from webhooks.proposals import ProposalRefused, whole_file_changes


def change(path: str, kind: str, content: str | None = None) -> ProposedChange:
    return ProposedChange(file_path=path, change_type=kind, new_content=content)


def test_updates_replace_the_whole_text_and_keep_the_files_line_ends(tmp_path):
    (tmp_path / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    (tmp_path / "blank.txt").write_text("\n\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    proposed = [change("crlf.txt", "update", "one\nTWO\n"), change("blank.txt", "update", "filled\n"),
                change("gone.txt", "delete"), change("new/file.py", "create", "x = 1\n")]
    changes = whole_file_changes(tmp_path, proposed)
    assert [c.change_type for c in changes] == [ChangeType.UPDATE, ChangeType.DELETE, ChangeType.CREATE,
                                                ChangeType.DELETE, ChangeType.CREATE]
    decision = Policy().evaluate(Proposal(summary="s", changes=changes), tmp_path)
    assert decision.allowed and decision.lines_added == 2  # the new file's line and blank.txt's; "two" → "TWO" is net 0
    apply_changes(tmp_path, changes)
    assert (tmp_path / "crlf.txt").read_bytes() == b"one\r\nTWO\r\n"
    assert (tmp_path / "blank.txt").read_text() == "filled\n"
    assert not (tmp_path / "gone.txt").exists() and (tmp_path / "new/file.py").read_text() == "x = 1\n"


@pytest.mark.parametrize(("proposed", "says"), [
    (change("missing.py", "update", "x\n"), "use change_type create"),
    (change("missing.py", "delete"), "cannot delete"),
    (change("here.py", "create", "x\n"), "use change_type update"),
])
def test_changes_that_do_not_fit_the_checkout_are_422(tmp_path, proposed, says):
    (tmp_path / "here.py").write_text("x = 0\n")
    with pytest.raises(ProposalRefused) as info:
        whole_file_changes(tmp_path, [proposed])
    assert info.value.status_code == 422 and says in info.value.detail


def test_a_path_leaving_the_checkout_is_left_for_the_policy_to_refuse(tmp_path):
    changes = whole_file_changes(tmp_path, [change("../outside.py", "update", "x\n")])
    decision = Policy().evaluate(Proposal(summary="s", changes=changes), tmp_path)
    assert not decision.allowed and "`..`" in decision.violations[0]
