"""Training data: SFT and DPO examples as JSONL in the conversational format TRL reads.

- SFT (`{"messages": [system, user, assistant]}`): the generator's prompt of an approved attempt, or of
  the attempt a merged pull request carried, and its reply (the Proposal JSON). Attempts of a run whose
  pull request was closed unmerged are left out: a person said no.
- DPO (`{"prompt": [system, user], "chosen": [assistant], "rejected": [assistant]}`): two replies to
  the same prompt, the better one chosen. Better means merged over no verdict over closed, then the
  higher reward (an attempt whose edits could not be applied counts as reward 0). Pairing:
  `prompt` (default) pairs attempts whose prompts are identical, as the candidates of one ensemble
  iteration are; `task` pairs attempts at the same task across iterations and runs, and uses the
  rejected attempt's prompt (the answer that prompt got, against a better answer to the same task).

The prompt is the real one: the cycle keeps each attempt's generator messages in
`IterationRecord.generator_messages`. Attempts recorded without them (older records) are skipped and
counted. Opted-out repositories are never exported.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from bot.records import Episode, IterationRecord, IterationStatus
from bot.store import Store, StoreError
from bot.store.github import GitHubStore

ExportFormat = Literal["sft", "dpo"]
Pairing = Literal["prompt", "task"]
ALL = 10**9


# --- the JSONL shapes (TRL's conversational format) ---------------------------------------------


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class SFTExample(BaseModel):
    messages: list[ChatMessage]

    @model_validator(mode="after")
    def _ends_with_the_answer(self) -> SFTExample:
        if len(self.messages) < 2 or self.messages[-1].role != "assistant":
            raise ValueError("an SFT example is a prompt followed by the assistant's answer")
        if any(m.role == "assistant" for m in self.messages[:-1]):
            raise ValueError("only the last message is the assistant's")
        return self


class DPOExample(BaseModel):
    prompt: list[ChatMessage]
    chosen: list[ChatMessage]
    rejected: list[ChatMessage]

    @model_validator(mode="after")
    def _two_answers_to_one_prompt(self) -> DPOExample:
        if not self.prompt or self.prompt[-1].role != "user":
            raise ValueError("a DPO prompt ends with the user's message")
        for name, answer in (("chosen", self.chosen), ("rejected", self.rejected)):
            if len(answer) != 1 or answer[0].role != "assistant":
                raise ValueError(f"{name} is one assistant message")
        if self.chosen[0].content == self.rejected[0].content:
            raise ValueError("chosen and rejected are the same answer")
        return self


class ExportResult(BaseModel):
    format: ExportFormat
    written: int = 0
    attempts_seen: int = 0
    skipped_without_prompt: int = 0  # recorded before prompts were kept
    skipped_opted_out: int = 0  # attempts of opted-out repositories
    skipped_closed: int = 0  # SFT: approved attempts whose pull request was closed unmerged
    repos: list[str] = Field(default_factory=list)


# --- gathering ----------------------------------------------------------------------------------


class Attempt(BaseModel):
    """One generator attempt with what training needs to know about it."""

    repo: str
    task_key: str
    record: IterationRecord
    human: Literal["merged", "closed"] | None = None

    @property
    def reward(self) -> float:
        return self.record.reward.value if self.record.reward else 0.0

    @property
    def rank(self) -> tuple[int, float]:
        return ({"merged": 2, None: 1, "closed": 0}[self.human], self.reward)

    @property
    def answer(self) -> str:
        assert self.record.proposal is not None
        return self.record.proposal.model_dump_json()

    @property
    def prompt_key(self) -> str:
        return hashlib.sha256(json.dumps(self.record.generator_messages, sort_keys=True).encode()).hexdigest()


def _feedback_by_run(store: Store, repo: str | None) -> dict[str, Literal["merged", "closed"]]:
    verdicts: dict[str, Literal["merged", "closed"]] = {}
    for feedback in reversed(GitHubStore(store).list_feedback(repo=repo, limit=ALL)):  # oldest first, newest wins
        if feedback.run_id:
            verdicts[feedback.run_id] = "merged" if feedback.merged else "closed"
    return verdicts


def _episodes(store: Store, repo: str | None) -> Iterator[Episode]:
    for run in store.list_runs(repo=repo, limit=ALL):
        yield from store.list_episodes(run.run_id)


def gather_attempts(store: Store, result: ExportResult, *, repo: str | None = None) -> list[Attempt]:
    """Every attempt that produced a proposal with changes, with its prompt, outside opted-out repos."""
    excluded = {o.repo for o in store.list_opt_outs()}
    verdicts = _feedback_by_run(store, repo)
    attempts: list[Attempt] = []
    repos: set[str] = set()
    for episode in _episodes(store, repo):
        episode_repo = episode.task.repo or episode.context.repo
        for record in episode.iterations:
            if record.proposal is None or not record.proposal.changes:
                continue
            result.attempts_seen += 1
            if episode_repo in excluded:
                result.skipped_opted_out += 1
                continue
            if not record.generator_messages:
                result.skipped_without_prompt += 1
                continue
            repos.add(episode_repo)
            attempts.append(
                Attempt(
                    repo=episode_repo, task_key=f"{episode_repo}\x1f{episode.task.text}", record=record,
                    human=verdicts.get(record.run_id),
                )
            )
    result.repos = sorted(repos)
    return attempts


# --- building examples --------------------------------------------------------------------------


def sft_examples(attempts: list[Attempt], result: ExportResult) -> list[SFTExample]:
    """Approved attempts (and the best attempt of each run a person merged), minus closed runs."""
    by_run: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        by_run[a.record.run_id].append(a)
    examples = []
    for run_attempts in by_run.values():
        approved = [a for a in run_attempts if a.record.status is IterationStatus.APPROVED]
        if run_attempts[0].human == "closed":
            result.skipped_closed += len(approved)
            continue
        keep = approved
        if not keep and run_attempts[0].human == "merged":  # a merged draft: its best attempt
            keep = [max(run_attempts, key=lambda a: a.reward)]
        for a in keep:
            messages = [*a.record.generator_messages, {"role": "assistant", "content": a.answer}]
            examples.append(SFTExample.model_validate({"messages": messages}))
    return examples


def dpo_examples(attempts: list[Attempt], *, pairing: Pairing = "prompt", min_margin: float = 0.05) -> list[DPOExample]:
    """For each group of attempts at the same prompt (or task), the best against each clearly worse one.
    Clearly worse: a worse human verdict, or a reward at least `min_margin` lower."""
    groups: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        groups[a.prompt_key if pairing == "prompt" else a.task_key].append(a)
    examples = []
    for group in groups.values():
        ranked = sorted(group, key=lambda a: a.rank, reverse=True)
        best = ranked[0]
        seen_answers = {best.answer}
        for worse in ranked[1:]:
            clearly = worse.rank[0] < best.rank[0] or best.reward - worse.reward >= min_margin
            if not clearly or worse.answer in seen_answers:
                continue
            seen_answers.add(worse.answer)
            examples.append(
                DPOExample.model_validate(
                    {
                        "prompt": worse.record.generator_messages,
                        "chosen": [{"role": "assistant", "content": best.answer}],
                        "rejected": [{"role": "assistant", "content": worse.answer}],
                    }
                )
            )
    return examples


def export_training_data(
    store: Store,
    out: Path,
    fmt: ExportFormat,
    *,
    repo: str | None = None,
    pairing: Pairing = "prompt",
    min_margin: float = 0.05,
) -> ExportResult:
    """Write SFT or DPO JSONL to `out`, one example per line; returns what was written and skipped."""
    if fmt not in ("sft", "dpo"):
        raise StoreError(f"unknown export format {fmt!r}: use sft or dpo")
    result = ExportResult(format=fmt)
    attempts = gather_attempts(store, result, repo=repo)
    examples: list[SFTExample] | list[DPOExample] = (
        sft_examples(attempts, result) if fmt == "sft" else dpo_examples(attempts, pairing=pairing, min_margin=min_margin)
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for example in examples:
                fh.write(example.model_dump_json() + "\n")
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc}") from exc
    result.written = len(examples)
    return result
