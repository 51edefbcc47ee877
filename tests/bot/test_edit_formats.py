"""bot.edit_formats: the registry, the setting, the assembled generator prompt, and the JSON format's parser."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.edit_formats import DEFAULT_EDIT_FORMAT, FORMATS, EditFormat, UnknownEditFormat, get_format
from bot.edit_formats.json_search_replace import JsonSearchReplace
from bot.llm.client import describe_validation_error, parse_reply
from bot.records import ChangeType, Proposal, Task
from bot.roles import Generator
from bot.roles.prompting import load_prompt
from tests.fakes.ollama import FakeOllama

# SHA-256 of the generator's system and user templates (joined by NUL). Moving the JSON search/replace
# instructions into bot/edit_formats/ kept it unchanged; it changed since only with the prompt text
# (reproduction first), then with issue 11: placeholders instead of a copyable example path, and the
# previous attempt in its own block after the repository context (stable part first, for prompt
# caches), then with issue 19: the guidance, which only grows, before the previous attempt, which changes
# every time. Change it only with a deliberate change to the prompt text.
GENERATOR_PROMPT_SHA256 = "c02c798fd88d8328ab99bbc5858c4a37c17fbbbb790b601d6141cf3baba70b43"

# A reply as qwen2.5-coder writes it when it ignores "no Markdown fences".
FENCED_REPLY = '''```json
{
  "summary": "Count quantities in Cart.total and cover it with a test.",
  "changes": [
    {
      "file_path": "src/shop/cart.py",
      "change_type": "update",
      "edits": [
        {
          "search": "    def total(self):\\n        return sum(item.price for item in self.items)\\n",
          "replace": "    def total(self):\\n        return sum(item.price * item.quantity for item in self.items)\\n"
        }
      ],
      "new_content": null,
      "rationale": "total ignored quantities."
    },
    {
      "file_path": "tests/test_quantities.py",
      "change_type": "create",
      "edits": [],
      "new_content": "from shop.cart import Cart, Item\\n\\n\\ndef test_total_counts_quantities():\\n    cart = Cart()\\n    cart.add(Item(price=2, quantity=3))\\n    assert cart.total() == 6\\n",
      "rationale": "Covers the fix."
    },
    {
      "file_path": "src/shop/legacy_total.py",
      "change_type": "delete",
      "edits": [],
      "new_content": null,
      "rationale": "Unused since the fix."
    }
  ]
}
```'''
PLAIN_REPLY = FENCED_REPLY.removeprefix("```json\n").removesuffix("\n```")


# --- the registry and the setting ------------------------------------------------------------------


def test_default_format_is_json_search_replace():
    edit_format = get_format(DEFAULT_EDIT_FORMAT)
    assert isinstance(edit_format, JsonSearchReplace)
    assert edit_format.name == "json-search-replace" and edit_format.output_schema is Proposal
    assert list(FORMATS) == ["json-search-replace", "search-replace", "whole-file", "json-line-edits"]


def test_unknown_format_names_the_known_ones():
    known = "the known formats are json-line-edits, json-search-replace, search-replace, whole-file"
    with pytest.raises(UnknownEditFormat, match=f"unknown edit format 'udiff': {known}"):
        get_format("udiff")


def test_setting_selects_a_format_and_refuses_an_unknown_one(monkeypatch):
    assert Settings().edit_format == "json-search-replace"
    monkeypatch.setenv("AURA_EDIT_FORMAT", "json-search-replace")
    assert Settings().edit_format == "json-search-replace"
    monkeypatch.setenv("AURA_EDIT_FORMAT", "whole-file")
    assert Settings().edit_format == "whole-file"
    monkeypatch.setenv("AURA_EDIT_FORMAT", "udiff")
    known = "the known formats are json-line-edits, json-search-replace, search-replace, whole-file"
    with pytest.raises(ValidationError, match=f"unknown edit format 'udiff': {known}"):
        Settings()


def test_generator_refuses_an_unknown_format(fake_ollama: FakeOllama):
    with pytest.raises(UnknownEditFormat, match="udiff"):
        Generator(fake_ollama.llm(), model="m", num_ctx=8192, max_output_tokens=1024, edit_format="udiff")


# --- the assembled generator prompt ----------------------------------------------------------------


def test_default_prompt_is_pinned():
    prompt = load_prompt("generator")
    digest = hashlib.sha256(f"{prompt.system.template}\0{prompt.user.template}".encode()).hexdigest()
    assert digest == GENERATOR_PROMPT_SHA256
    explicit = load_prompt("generator", DEFAULT_EDIT_FORMAT)
    assert (explicit.system.template, explicit.user.template) == (prompt.system.template, prompt.user.template)


def test_format_parts_fill_their_slots_in_the_generator_prompt():
    parts = get_format("json-search-replace").prompt_parts
    assert set(parts) == {"reply", "instructions", "closing"}
    prompt = load_prompt("generator")
    system, user = prompt.system.template, prompt.user.template
    assert f"guidance from earlier attempts. {parts['reply']} The changes are applied mechanically" in system
    assert system.index("# Trust rules") < system.index(parts["instructions"]) < system.index("# How to work")
    assert parts["instructions"].startswith("# Output format") and "Inside JSON strings" in parts["instructions"]
    assert user.endswith(f"</previous_attempt>\n\n{parts['closing']}")
    assert "<!--" not in system + user


def test_a_slot_the_format_lacks_is_an_error():
    with pytest.raises(ValueError, match="json-search-replace: no prompt part 'examples'"):
        get_format("json-search-replace").assemble("Intro.\n<!-- edit format: examples -->\n")


def test_prompts_of_other_roles_have_no_slots():
    for role in ("discriminator", "agitator"):
        text = load_prompt(role).system.template + load_prompt(role).user.template
        assert "edit format" not in text


# --- the JSON search/replace parser on model replies -----------------------------------------------


def test_parses_a_reply_with_update_create_and_delete():
    proposal = JsonSearchReplace().parse(PLAIN_REPLY)
    assert [c.change_type for c in proposal.changes] == [ChangeType.UPDATE, ChangeType.CREATE, ChangeType.DELETE]
    search = proposal.changes[0].edits[0].search
    assert search == "    def total(self):\n        return sum(item.price for item in self.items)\n"
    assert proposal.changes[1].new_content.endswith("assert cart.total() == 6\n")


def test_a_code_fence_around_the_json_is_tolerated():
    assert JsonSearchReplace().parse(FENCED_REPLY) == JsonSearchReplace().parse(PLAIN_REPLY)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("Here is the change:\n" + FENCED_REPLY, "Invalid JSON"),  # prose before the fence
        (PLAIN_REPLY[: len(PLAIN_REPLY) // 2], "Invalid JSON"),  # cut off at the token limit
        ('{"summary": "s", "changes": [{"file_path": "a.py", "change_type": "create"}]}', "a create carries"),
        ('{"changes": []}', "summary: Field required"),
    ],
)
def test_malformed_replies_raise_the_errors_the_repair_request_quotes(reply, error):
    with pytest.raises(ValidationError) as caught:
        JsonSearchReplace().parse(reply)
    assert error in describe_validation_error(caught.value)
    with pytest.raises(ValidationError) as before:
        parse_reply(Proposal, reply)  # how the LLM layer parsed a Proposal before edit formats
    assert describe_validation_error(caught.value) == describe_validation_error(before.value)


# --- the seam: another format changes the prompt and the parsing, nothing else ----------------------


class SummaryTaggedFormat(JsonSearchReplace):
    """A test format: its own prompt parts, and a parser that marks the proposals it read."""

    name = "test-tagged"
    prompt_parts = {"reply": "REPLY PART.", "instructions": "# INSTRUCTIONS PART", "closing": "CLOSING PART."}

    def parse(self, reply: str, read_file=None) -> Proposal:
        proposal = super().parse(reply, read_file)
        return proposal.model_copy(update={"summary": f"[tagged] {proposal.summary}"})


async def test_generator_sends_the_format_parts_and_uses_its_parser(fake_ollama: FakeOllama, monkeypatch):
    monkeypatch.setitem(FORMATS, SummaryTaggedFormat.name, SummaryTaggedFormat())
    fake_ollama.queue("generator", PLAIN_REPLY)
    generator = Generator(
        fake_ollama.llm(), model="m", num_ctx=8192, max_output_tokens=1024, edit_format=SummaryTaggedFormat.name
    )
    proposal, _ = await generator.propose(Task(title="Count quantities"), "(context)", [])

    assert proposal.summary == "[tagged] Count quantities in Cart.total and cover it with a test."
    [request] = fake_ollama.requests
    system, user = (m["content"] for m in request["messages"])
    assert "earlier attempts. REPLY PART. The changes" in system and "\n\n# INSTRUCTIONS PART\n\n" in system
    assert "# Output format" not in system
    assert user.endswith("CLOSING PART.")
    assert request["format"] == Proposal.model_json_schema()


def test_every_registered_format_implements_the_interface():
    for name, edit_format in FORMATS.items():
        assert isinstance(edit_format, EditFormat) and edit_format.name == name
        assert load_prompt("generator", name).system.is_valid()
