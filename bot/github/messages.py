"""What the bot writes on GitHub: PR bodies, progress, denials, replies. Plain functions, easy to test."""

from __future__ import annotations

from collections.abc import Sequence

PROGRESS_MARKER = "<!-- aura-sicd:progress {key} -->"  # finds our progress comment again after a restart


def progress_marker(key: str) -> str:
    return PROGRESS_MARKER.format(key=key)


def pr_body(rationale: str, *, closes: int | None = None, improves: int | None = None, footer: str = "") -> str:
    """The PR description: the cycle's rationale, then `Closes #N` so merging closes the issue."""
    parts = [rationale.strip() or "Changes proposed by aura-sicd."]
    if closes is not None:
        parts.append(f"Closes #{closes}")
    if improves is not None:
        parts.append(f"Improves #{improves} (opened against that pull request's branch).")
    if footer:
        parts.append(footer.strip())
    parts.append("<sub>Opened by aura-sicd. Review it like any other PR: comment `/improve <what to change>` "
                 "or leave review comments, and the next iteration pushes to this branch.</sub>")
    return "\n\n".join(parts)


def progress_comment(
    key: str,
    *,
    iteration: int,
    max_iterations: int,
    state: str,
    checks: Sequence[tuple[str, str]] = (),
    reward: float | None = None,
    dashboard_url: str | None = None,
) -> str:
    """One comment edited in place while a job works: iteration k of N, checks, reward, a link."""
    lines = [progress_marker(key), f"**aura-sicd** — {state} (iteration {iteration} of {max_iterations})", ""]
    if checks:
        lines += ["| check | result |", "| --- | --- |", *(f"| `{name}` | {status} |" for name, status in checks), ""]
    if reward is not None:
        lines.append(f"Reward: **{reward:.2f}**")
    if dashboard_url:
        lines.append(f"[Details on the dashboard]({dashboard_url})")
    return "\n".join(lines).rstrip() + "\n"


def permission_denied(login: str) -> str:
    return (
        f"Hi @{login}, thanks for the suggestion! aura-sicd only starts work for people with write access "
        "to this repository, so nothing will run for this request. A maintainer can trigger it instead."
    )


def invalid_repo_config(path: str, errors: str) -> str:
    return (
        f"aura-sicd did not start: `{path}` is not valid, and the defaults are not used in its place.\n\n"
        f"```\n{errors}\n```\n\nFix the file and trigger again."
    )


def forgotten(login: str, memory_id: int, *, deleted: bool) -> str:
    if deleted:
        return (f"@{login} done: memory entry {memory_id} is forgotten; aura-sicd will not hand it to the model again. "
                "`aura-sicd learning memory` (or the admin API) lists what is left.")
    return (f"@{login} this repository has no memory entry {memory_id}, so nothing was forgotten. "
            "`aura-sicd learning memory OWNER/REPO` (or `GET /admin/memory/OWNER/REPO`) lists the entries with their ids.")


def forget_usage() -> str:
    return "Usage: `/aura forget <id>`, where the id is a number from `aura-sicd learning memory OWNER/REPO`."
