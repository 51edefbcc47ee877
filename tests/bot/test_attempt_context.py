"""The generator's context in two parts, each built once from one budget: the task's (byte-identical in
every attempt) and the attempt's (the previous diff, its failures, and the code their tracebacks name),
on a real bug-fix commit of a real project (tests/data/realrepos/)."""

from __future__ import annotations



from bot.context.attempt import DEFINITIONS_TITLE
from bot.roles import Generator
from bot.roles.generator import PromptBudget, generator_context
from bot.llm.tokens import count_message_tokens
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
        stable, changing, tokens = generator_context(index, task.task(), attempt, budget)
        await generator.propose(task.task(), stable, [], changing)
        prompts.append((stable, changing, fake_ollama.requests[-1]["messages"]))

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
