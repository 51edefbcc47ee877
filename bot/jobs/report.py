"""What a job says on GitHub while and after it works: the progress comment, final comments, review
replies and the check run's text. Plain functions of the episode, plus the progress reporter that edits
one comment in place from the cycle's events."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from dbos._error import DBOSMaxStepRetriesExceeded

from bot.events import (
    ChecksFinished,
    EpisodeCompleted,
    EventBus,
    IterationCompleted,
    IterationStarted,
)
from bot.github.messages import progress_comment
from bot.github.text import inert
from bot.jobs.rate_limits import RateLimitPastBudget
from bot.pr_body import STATUS_MARK
from bot.records import Episode, EpisodeStatus, IterationRecord
from sandbox.reports import CheckReport

log = logging.getLogger(__name__)


def dashboard_url(public_url: str, run_id: str) -> str:
    return f"{public_url.rstrip('/')}/dashboard/runs/{run_id}"


def check_rows(report: CheckReport | None) -> list[tuple[str, str]]:
    if report is None:
        return []
    return [(c.name, STATUS_MARK.get(c.status, str(c.status))) for c in report.checks]


def _attempt_line(record: IterationRecord) -> str:
    reward = f"reward {record.reward.value:.2f}" if record.reward else "no reward"
    checks = ", ".join(f"{name} {mark}" for name, mark in check_rows(record.check_report)) or "no checks ran"
    why = record.error or record.apply_error or ""
    return f"- iteration {record.number}" + (f".{record.candidate}" if record.candidate else "") + \
        f" ({record.model or 'model'}): {record.status.value}; {checks}; {reward}" + (f" — {why[:300]}" if why else "")


def _failing_checks(record: IterationRecord | None) -> str:
    if record is None or record.check_report is None:
        return "No checks ran for the best attempt."
    failed = record.check_report.failed_checks
    if not failed:
        reasons = "; ".join(record.reward.reasons) if record.reward else ""
        return "Every check passed, but the change was not approved" + (f": {reasons}" if reasons else ".")
    return "Failing checks of the best attempt:\n\n```\n" + record.check_report.summary(max_chars=3000) + "\n```"


def exhausted_comment(episode: Episode, *, draft_url: str | None, dashboard: str) -> str:
    """Attempts ran out: what was tried, why the best attempt falls short, and where it is."""
    lines = [f"aura-sicd could not produce an approved change in {len(episode.iterations)} attempt(s).", "",
             "What was tried:", *(_attempt_line(r) for r in episode.iterations), "",
             _failing_checks(episode.chosen_iteration()), ""]
    if draft_url:
        lines.append(f"The best attempt is in a draft pull request: {draft_url}")
    lines.append(f"[Details on the dashboard]({dashboard})")
    return "\n".join(lines) + "\n"


def no_change_comment(episode: Episode) -> str:
    summary = inert(episode.outcomes.summary)
    evidence = episode.outcomes.evidence.strip()
    return ("aura-sicd looked into this and found that no change is needed." + (f"\n\n> {summary}" if summary else "")
            + (f"\n\n{evidence}" if evidence else ""))


def opened_comment(pr_url: str, *, draft: bool) -> str:
    if draft:
        return f"aura-sicd opened a **draft** pull request with its best (not approved) attempt: {pr_url}"
    return f"aura-sicd opened a pull request for this: {pr_url}"


def failed_comment(error: str, dashboard: str) -> str:
    return f"aura-sicd stopped before finishing: {error[:1000]}\n\n[Details on the dashboard]({dashboard})"


SETUP_OUTPUT_LINES = 25
SETUP_OUTPUT_CHARS = 2000


def setup_failed_comment(message: str, output: str, *, show_output: bool, dashboard: str) -> str:
    """The repository's setup failed: why, and the end of its output (already scrubbed of passed-through
    secrets by the sandbox) unless the repository turned that off (`post_setup_output: false`)."""
    lines = [f"aura-sicd stopped before finishing: {message[:500]}", ""]
    if not show_output:
        lines.append("The setup's output is not posted here (`post_setup_output: false` in `.github/aura-sicd.yml`).")
    elif output.strip():
        tail = output.strip().splitlines()[-SETUP_OUTPUT_LINES:]
        text = "\n".join(tail)[-SETUP_OUTPUT_CHARS:]
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
        lines += [f"The last {len(text.splitlines())} lines of its output:", "", fence, text, fence]
    return "\n".join([*lines, "", f"[Details on the dashboard]({dashboard})"]) + "\n"


def gave_up_comment(doing: str, error: str, *, done: list[str], tried: str, dashboard: str) -> str:
    """The job stops for good: what it achieved, where it failed and why, what was tried, how to try again."""
    lines = [f"aura-sicd gave up while {doing}: {error[:500]}", ""]
    if done:
        lines += ["What was done before that:", *(f"- {d}" for d in done), ""]
    else:
        lines += ["Nothing was published.", ""]
    retry = f"{tried} To try again, remove and add the label again (or comment `/improve`)."
    lines += [retry, "", f"[Details on the dashboard]({dashboard})"]
    return "\n".join(lines) + "\n"


PUBLISH_STEPS = {"push", "open-pr", "request-review", "record-pr", "check-run", "comment-opened", "comment-exhausted",
                 "remove-label", "progress-end"}
STEP_WORDS = {
    "progress": "starting", "sync": "fetching the repository", "repo": "reading the repository configuration",
    "task": "reading the issue", "check": "checking the models", "push": "pushing the branch",
    "open-pr": "opening the pull request", "request-review": "requesting a review", "record-pr": "recording the pull request",
    "check-run": "adding the check run", "comment-opened": "linking the pull request", "reply": "answering the review",
    "comment-exhausted": "reporting the attempts", "remove-label": "removing the label", "progress-end": "finishing",
}


def step_words(step: str) -> str:
    return STEP_WORDS.get(step) or STEP_WORDS.get(step.split("-")[0]) or f"step {step}"


def is_publish_step(step: str) -> bool:
    return step in PUBLISH_STEPS or step.startswith("reply-")


def root_cause(exc: BaseException) -> str:
    """The error worth telling a person: the last attempt's, for a step DBOS retried until it gave up."""
    if isinstance(exc, DBOSMaxStepRetriesExceeded) and exc.errors:
        exc = exc.errors[-1]
    if isinstance(exc, RateLimitPastBudget):
        return str(exc)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"GitHub answered HTTP {response.status_code} ({type(exc).__name__})"
    return f"{type(exc).__name__}: {str(exc)[:500]}"


def iteration_reply(episode: Episode, *, pushed_sha: str | None) -> str:
    """The answer in each review thread: what changed, or why nothing did."""
    record = episode.chosen_iteration()
    if episode.status is EpisodeStatus.APPROVED and pushed_sha:
        summary = inert(record.proposal.summary) if record and record.proposal else ""
        return f"Pushed {pushed_sha[:12]} to this branch: {summary or 'the change asked for'}"
    if episode.status is EpisodeStatus.NO_CHANGE:
        summary = inert(episode.outcomes.summary)
        return "No change made: the model found nothing to change" + (f" ({summary})" if summary else ".")
    return ("No change pushed: no attempt was approved in "
            f"{len(episode.iterations)} iteration(s). " + _failing_checks(record))


def check_run_output(episode: Episode) -> tuple[str, str, str, str]:
    """(conclusion, title, summary, text) for the check run on the pushed commit."""
    record = episode.chosen_iteration()
    report = record.check_report if record else None
    approved = episode.status is EpisodeStatus.APPROVED
    conclusion = "success" if approved else "failure"
    reward = f"reward {record.reward.value:.2f}" if record and record.reward else "no reward"
    title = ("approved" if approved else "not approved") + f" ({reward})"
    if report is None:
        return conclusion, title, "No checks ran.", ""
    rows = ["| check | result | duration |", "| --- | --- | --- |"]
    rows += [f"| `{c.name}` | {STATUS_MARK.get(c.status, c.status)} | {c.duration_s:.1f}s |" for c in report.checks]
    summary = "\n".join(rows) + f"\n\nPass rate: **{report.pass_rate:.0%}** ({report.backend} sandbox)"
    return conclusion, title, summary, report.summary(max_chars=60000)


Edit = Callable[[str], Awaitable[None]]


class ProgressReporter:
    """Edits the job's one progress comment in place as the cycle's events arrive.

    Best effort: a failed edit is logged and the job goes on. Runs outside the durable steps, so after
    a restart the replayed events edit the comment again to the same texts.
    """

    def __init__(self, edit: Edit, *, key: str, max_iterations: int, dashboard: str) -> None:
        self.edit = edit
        self.key = key
        self.max_iterations = max_iterations
        self.dashboard = dashboard
        self.iteration = 0
        self.checks: list[tuple[str, str]] = []
        self.reward: float | None = None
        self._last = ""

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(IterationStarted, self.on_started)
        bus.subscribe(ChecksFinished, self.on_checks)
        bus.subscribe(IterationCompleted, self.on_completed)
        bus.subscribe(EpisodeCompleted, self.on_episode)

    def render(self, state: str) -> str:
        return progress_comment(self.key, iteration=max(self.iteration, 1), max_iterations=self.max_iterations,
                                state=state, checks=self.checks, reward=self.reward, dashboard_url=self.dashboard)

    async def show(self, state: str) -> None:
        body = self.render(state)
        if body == self._last:
            return
        try:
            await self.edit(body)
            self._last = body
        except Exception as exc:  # progress is a courtesy; it never fails the job
            log.info("progress comment %s not updated: %r", self.key, exc)

    async def on_started(self, event: IterationStarted) -> None:
        self.iteration = event.number
        self.max_iterations = event.max_iterations
        await self.show("generating a change")

    async def on_checks(self, event: ChecksFinished) -> None:
        self.checks = check_rows(event.report)
        await self.show("checks finished, scoring")

    async def on_completed(self, event: IterationCompleted) -> None:
        if event.record.reward is not None:
            self.reward = event.record.reward.value
        await self.show(f"iteration {event.record.number}: {event.record.status.value}")

    async def on_episode(self, event: EpisodeCompleted) -> None:
        # never "done" here: publishing comes next, and the job's last edit says how that went
        status = event.episode.status
        after = ", publishing" if status in (EpisodeStatus.APPROVED, EpisodeStatus.EXHAUSTED) else ""
        await self.show(f"cycle finished: {status.value}{after}")
