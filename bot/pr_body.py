"""The pull request a proposal becomes: title and body in the seed's template (also written to data/proposals)."""

from __future__ import annotations

from bot.github.text import inert
from bot.records import Episode, IterationRecord, IterationStatus
from bot.verdict_records import Comparison, Judgment
from sandbox.reports import CheckStatus

STATUS_MARK = {
    CheckStatus.PASSED: "✅ passed",
    CheckStatus.FAILED: "❌ failed",
    CheckStatus.ERROR: "⚠️ error",
    CheckStatus.TIMEOUT: "⏱️ timeout",
    CheckStatus.OOM: "💥 out of memory",
    CheckStatus.SKIPPED: "➖ skipped",
}


def render_pr(episode: Episode, *, closes: int | None = None) -> tuple[str, str]:
    record = episode.chosen_iteration()
    draft = record is None or record.status is not IterationStatus.APPROVED
    title = ("[draft] " if draft else "") + f"Aura SICD: {episode.task.title}"
    lines: list[str] = ["## Description", ""]
    if record is not None and record.proposal is not None:
        lines.append(inert(record.proposal.summary))
        lines.append("")
    lines.append(f"Task: {episode.task.title}")
    if closes is not None:
        lines += ["", f"Closes #{closes}"]
    if draft:
        lines += ["", "> This is the best attempt; it was **not approved**: " + _why_not(record)]

    lines += ["", "## Changes Summary", ""]
    if record is not None and record.proposal is not None:
        for change in record.proposal.changes:
            lines.append(f"- **{change.change_type.value.upper()}**: `{change.file_path}`")
            rationale = inert(change.rationale) or "(no rationale given)"
            lines += [f"  {line}" for line in rationale.splitlines()]
    else:
        lines.append("No change.")

    lines += ["", "## Test Results", ""]
    report = record.check_report if record is not None else None
    if report is None:
        lines.append("No checks ran.")
    else:
        lines += ["| check | status | duration |", "|---|---|---|"]
        for check in report.checks:
            detail = ""
            if check.tests is not None:
                t = check.tests
                detail = f" ({t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped)"
            lines.append(f"| {check.name} | {STATUS_MARK.get(check.status, check.status)}{detail} | {check.duration_s:.1f}s |")
        lines += ["", f"Pass rate: **{report.pass_rate:.0%}** ({report.backend} sandbox)"]
        if report.pass_rate_reason:
            lines.append(f"_{report.pass_rate_reason}_")
        if report.plan_source:
            lines.append(f"Test command from: `{report.plan_source}`")
    if record is not None and record.comparison is not None:
        lines += ["", *_against_main(record.comparison, episode.context.base_sha)]
    if record is not None and record.judgment is not None:
        lines += _tests_touched(record.judgment)
    if record is not None and record.test_impact is not None and record.test_impact.selection.tests:
        lines += ["", "<details><summary>Tests run first</summary>", "", record.test_impact.summary(), "", "</details>"]

    lines += ["", "## Reward Trace", "", "| iteration | candidate | model | status | pass rate | rubric | reward |", "|---|---|---|---|---|---|---|"]
    for r in episode.iterations:
        pass_rate = f"{r.check_report.pass_rate:.2f}" if r.check_report else "–"
        rubric = f"{r.reward.rubric_score:.2f}" if r.reward and r.reward.rubric_score is not None else "–"
        reward = f"{r.reward.value:.3f}" if r.reward else "–"
        lines.append(f"| {r.number} | {r.candidate} | {r.model or '–'} | {r.status.value} | {pass_rate} | {rubric} | {reward} |")

    lines += ["", "---", f"Training Run ID: `{episode.run_id}`", f"Episode ID: `{episode.episode_id}`"]
    return title, "\n".join(lines) + "\n"


def _against_main(comparison: Comparison, base_sha: str) -> list[str]:
    """What the change did to the checks, against the same checks on the base commit."""
    where = f"`{base_sha[:12]}`" if base_sha else "the base commit"
    lines = [f"Compared with the same checks on {where}:", ""]
    if comparison.reproduced:
        lines.append("- Reproduced (fail on main, pass with this change): " + ", ".join(f"`{t}`" for t in comparison.reproduced))
    if comparison.fixed:
        lines.append("- Fixed by this change: " + ", ".join(f"`{t}`" for t in comparison.fixed))
    if comparison.new_failures:
        lines.append("- Failing now, not on main: " + ", ".join(f"`{t}`" for t in comparison.new_failures))
    if comparison.still_failing_related:
        lines.append("- Still failing (the task is about them): " + ", ".join(f"`{t}`" for t in comparison.still_failing_related))
    for name, why in comparison.worse_checks.items():
        lines.append(f"- Worse than on main: {name} ({why})")
    if comparison.unchanged:
        lines.append("- Already failing on main, unchanged: " + ", ".join(f"`{t}`" for t in comparison.unchanged))
    if len(lines) == 2:
        lines.append("- No test or check changed its outcome.")
    return lines


def _tests_touched(judgment: Judgment) -> list[str]:
    """The tests, test data, test configuration and collection hooks the change touches, how the verdict
    judged them, and every existing assertion or expected value it changes, with its diff."""
    lines: list[str] = []
    if judgment.test_changes:
        lines += ["", "## Tests and Test Configuration Changed", "",
                  "The verdict ran the checks a second time with these as the base has them (unless the task asks "
                  "for the change):", ""]
        lines += [f"- {change.describe()}" for change in judgment.test_changes]
    if judgment.expectations:
        lines += ["", "## Changed Expectations", "",
                  "Existing assertions or expected values this change rewrites; review them first:", ""]
        for expectation in judgment.expectations:
            lines += [f"`{expectation.path}`:", "", "```diff", expectation.hunk.rstrip(), "```", ""]
    return lines


def _why_not(record: IterationRecord | None) -> str:
    if record is None:
        return "no attempt produced a usable change."
    if record.reward is not None and record.reward.reasons:
        return " ".join(record.reward.reasons)
    return record.error or record.apply_error or "it did not pass its checks."
