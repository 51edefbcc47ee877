"""The generator's context in two parts, each built once from one budget: the task's (byte-identical in
every attempt) and the attempt's (the previous diff, its failures, and the code their tracebacks name),
on a real bug-fix commit of a real project (tests/data/realrepos/)."""

from __future__ import annotations



import os

from bot.context.attempt import DEFINITIONS_TITLE
from bot.records import GuidanceEntry
from bot.roles import Generator
from bot.roles.generator import CHANGING_SHARE, MIN_CHANGING, PromptBudget, fit_guidance, generator_context
from bot.llm.tokens import count_message_tokens, count_tokens
from tests.bot.conftest import NestFailure
from tests.fakes.ollama import FakeOllama

REPLY = {"summary": "s", "changes": []}


async def test_attempt_two_holds_the_definition_its_failing_traceback_named(nest_failure: NestFailure,
                                                                            fake_ollama: FakeOllama):
    task, _, index, failed = nest_failure
    generator = Generator(fake_ollama.llm(), model="smollm2:135m", num_ctx=8192, max_output_tokens=512)
    budget = generator.budget(task.task())
    assert budget.task + budget.attempt + budget.guidance <= generator.context_budget(task.task(), [])
    previous = failed.model_copy(update={"diff": "--- a/tomli/_parser.py\n+++ b/tomli/_parser.py\n@@ -1 +1 @@\n-x\n+y\n"})
    prompts = []
    for attempt in (None, previous):
        fake_ollama.queue("Proposal", REPLY)
        context = generator_context(index, task.task(), attempt, budget)
        await generator.propose(task.task(), context.task_part, [], context.attempt_part)
        prompts.append((context.task_part, context.attempt_part, fake_ollama.requests[-1]["messages"]))

    (stable_1, changing_1, messages_1), (stable_2, changing_2, messages_2) = prompts
    header = "### tomli/_parser.py (lines 140-151, method NestedDict.get_or_create_nest)"
    assert header not in messages_1[1]["content"]  # the task's words alone do not find it
    assert stable_1 == stable_2 and changing_1 == ""  # the task's part: the same bytes in both attempts
    assert f"## {DEFINITIONS_TITLE}\n" in changing_2 and header in changing_2
    assert 'raise KeyError("There is no nest behind this key")' in changing_2
    assert "Your previous attempt (iteration 1): rejected" in changing_2 and "Its diff:" in changing_2
    user = messages_2[1]["content"]
    assert header in user and user.index(stable_2[:200]) < user.index("<previous_attempt>") < user.index(header)
    assert count_message_tokens(messages_2) + 512 <= 8192


def test_one_budget_split_in_one_unit():
    budget = PromptBudget.of(6000)
    assert (budget.guidance, budget.attempt) == (1200, 1500) and budget.task == 3072  # in steps of 512
    assert budget.task + budget.attempt + budget.guidance <= 6000
    assert PromptBudget.of(100).task == 256  # a floor for tiny windows


def test_what_changes_between_attempts_is_at_most_a_share_of_the_prompt():
    budget = PromptBudget.of(6000, fixed=900)
    assert budget.changing(budget.task) == int((900 + budget.task) * CHANGING_SHARE / (1 - CHANGING_SHARE))
    assert budget.changing(200) == MIN_CHANGING  # a small prompt still shows the last failure
    long_task = PromptBudget.of(6000, fixed=20_000)  # e.g. an issue pasted with a long log
    assert long_task.changing(long_task.task) == long_task.guidance + long_task.attempt  # the shares are smaller


async def test_a_later_attempts_prompt_is_mostly_the_first_attempts(nest_failure: NestFailure, fake_ollama: FakeOllama):
    """On a real project with a long guidance history and a long failed diff, attempt 2's prompt starts with
    what attempt 1's did for at least 1 - CHANGING_SHARE of its length (a prompt cache reuses that part),
    and still holds the definition its failing traceback named."""
    task, _, index, failed = nest_failure
    generator = Generator(fake_ollama.llm(), model="smollm2:135m", num_ctx=8192, max_output_tokens=512)
    budget = generator.budget(task.task())
    history = [GuidanceEntry(source="agitator", text=f"Attempt {n}: " + "check the nested tables. " * 40)
               for n in range(12)]
    diff = "--- a/tomli/_parser.py\n+++ b/tomli/_parser.py\n@@ -1,400 +1,400 @@\n" + "".join(
        f"-old line {n} = {os.urandom(6).hex()}\n+new line {n}\n" for n in range(400))
    prompts = []
    for attempt, shown in ((None, history[:6]), (failed.model_copy(update={"diff": diff}), history)):
        fake_ollama.queue("Proposal", REPLY)
        context = generator_context(index, task.task(), attempt, budget, shown)
        await generator.propose(task.task(), context.task_part, context.guidance, context.attempt_part)
        prompts.append("\n".join(m["content"] for m in fake_ollama.requests[-1]["messages"]))
    first, second = prompts
    common = os.path.commonprefix([first, second])
    assert count_tokens(common) >= (1 - CHANGING_SHARE - 0.02) * count_tokens(second)
    new = second[len(common):]
    assert "### tomli/_parser.py (lines 140-151, method NestedDict.get_or_create_nest" in new
    assert 'raise KeyError("There is no nest behind this key")' in new
    assert "Attempt 11: check" in second  # the newest guidance is kept


def test_a_tight_guidance_budget_keeps_the_newest_then_peoples_words_and_the_bases_failures():
    review = GuidanceEntry(source="review", text="Keep the public signature of get_or_create_nest.")
    baseline = GuidanceEntry(source="baseline", text="tests/test_misc.py::test_x fails on the base commit too.")
    advice = [GuidanceEntry(source="agitator", text=f"Attempt {n}: look at the nested tables again.") for n in range(10)]
    history = [review, baseline, *advice]
    budget = sum(count_tokens(e.text) + 16 for e in (review, baseline, advice[-1], advice[-2]))

    kept = fit_guidance(history, budget)

    assert kept == [review, baseline, advice[-2], advice[-1]]  # in their order, the newest advice only
    newest_only = count_tokens(advice[-1].text) + 16
    assert fit_guidance(history, newest_only) == [advice[-1]]  # what the last attempt got comes first
    assert fit_guidance(history, 10) == []
