"""Pull requests from forks: the bot's change is offered as a patch in a comment, never pushed.

A branch pushed into the base repository runs the base repository's `push` workflows with its secrets;
a branch holding a fork's commits would run an outsider's code that way, past GitHub's approval gate for
fork workflows. So for a fork's pull request the job pushes nothing, opens no pull request and posts no
check run (its commit exists only in the bot's mirror): an approved change comes back as a comment with
a `git am`-able patch the fork's author applies to their branch. An attempt that is not approved is
reported as for any job, without a patch.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.workspace import run_git

MAX_PATCH_CHARS = 50_000  # GitHub refuses comments above 65,536 characters; leave room for the text


def format_patch(mirror: Path, base_sha: str, commit: str) -> str:
    """The commits from `base_sha` to `commit` as a mailbox `git am` reads."""
    return run_git(["format-patch", "--stdout", "--no-signature", f"{base_sha}..{commit}"], mirror)


def fork_patch_comment(patch: str, *, head_ref: str, commit: str, dashboard: str) -> str:
    """The approved change as a comment: why it is not pushed, the patch, how to apply it."""
    why = ("This pull request comes from a fork, so aura-sicd pushes nothing for it: a branch in this repository "
           "would run its workflows, with its secrets, on the fork's code.")
    if len(patch) > MAX_PATCH_CHARS:
        return (f"aura-sicd has an approved change ({commit[:12]}), but its patch ({len(patch):,} characters) is too "
                f"large for a comment. {why} A maintainer can ask for a smaller change with `/improve`.\n\n"
                f"[Details on the dashboard]({dashboard})\n")
    longest = max((len(run) for run in re.findall(r"`+", patch)), default=0)
    fence = "`" * max(3, longest + 1)  # a fence the patch cannot close
    return (f"aura-sicd has an approved change for this pull request. {why}\n\n"
            f"To take it, save the patch below as `aura.patch` and run `git am aura.patch` on the branch "
            f"`{head_ref}`, then push.\n\n"
            f"<details><summary>aura.patch ({commit[:12]})</summary>\n\n{fence}diff\n{patch.rstrip()}\n{fence}\n\n"
            f"</details>\n\n[Details on the dashboard]({dashboard})\n")
