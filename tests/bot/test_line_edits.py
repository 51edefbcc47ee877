"""The json-line-edits format: a schema per prompt that only admits the shown files and their unique
lines, a parser that checks the same and repairs indentation, and edits that apply."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bot.context.excerpts import excerpt_block, whole_file_block
from bot.edit_formats import get_format
from bot.edit_formats.line_edits import anchor_text, anchors, reindent, shown_lines
from bot.edits import apply_changes
from bot.records import ChangeType, Task
from bot.roles import Generator
from tests.fakes.ollama import FakeOllama

CART = (
    "class Cart:\n"
    "    def __init__(self):\n"
    "        self.items = []\n"
    "\n"
    "    def total(self):\n"
    "        return sum(item.price for item in self.items)\n"
    "\n"
    "    def clear(self):\n"
    "        self.items = []\n"
)
LONG = "".join(f"value_{n} = {n}\n" for n in range(1, 301))
FILES = {"shop/cart.py": CART, "shop/long.py": LONG}
FORMAT = get_format("json-line-edits")


def context() -> str:
    return (
        "## Files named in the task\n" + whole_file_block("shop/cart.py", CART) + "\n\n"
        + excerpt_block("shop/long.py", LONG, [150], 60) + "\n\n"
        + "## Repository map (files and top-level definitions)\n### not/shown.py\n```\nx = 1\n```"
    )


def messages() -> list[dict[str, str]]:
    return [{"role": "system", "content": "### system/prompt.py\n```\nignored = 1\n```"},
            {"role": "user", "content": context()}]


def reply(*edits: tuple[str, str, str], summary: str = "Count quantities.") -> str:
    return json.dumps({"summary": summary, "edits": [{"file": f, "line": l, "replace": r} for f, l, r in edits]})


def test_shown_lines_are_the_fenced_code_under_each_file_header_of_the_user_message():
    shown = shown_lines(messages())
    assert shown["shop/cart.py"] == CART.splitlines()
    assert "value_150 = 150" in shown["shop/long.py"] and "value_1 = 1" not in shown["shop/long.py"]
    assert "system/prompt.py" not in shown  # the system prompt is not the repository


def test_anchors_are_the_shown_unique_lines_of_existing_files():
    found = anchors(messages(), FILES.get)
    assert "        self.items = []" not in found["shop/cart.py"]  # twice in the file: not a unique anchor
    assert "" not in found["shop/cart.py"]
    assert "        return sum(item.price for item in self.items)" in found["shop/cart.py"]
    assert set(found) == {"shop/cart.py", "shop/long.py"}  # not/shown.py does not exist
    assert "value_1 = 1" not in found["shop/long.py"]  # a substring of value_1x lines, and not shown


def test_the_request_schema_enumerates_files_and_their_lines():
    schema = FORMAT.request_schema(messages(), FILES.get)
    variants = schema["properties"]["edits"]["items"]["anyOf"]
    assert [v["properties"]["file"]["const"] for v in variants] == ["shop/cart.py", "shop/long.py"]
    assert variants[0]["properties"]["line"]["enum"] == anchors(messages(), FILES.get)["shop/cart.py"]
    assert schema["properties"]["edits"]["minItems"] == 1
    # nothing shown: the only reply the schema admits is one without edits
    empty = FORMAT.request_schema([{"role": "user", "content": "no code"}], FILES.get)
    assert empty["properties"]["edits"] == {"type": "array", "maxItems": 0}


def test_a_reply_becomes_edits_that_apply_with_the_indentation_repaired(tmp_path):
    (tmp_path / "shop").mkdir()
    for path, text in FILES.items():
        (tmp_path / path).write_text(text)
    proposal = FORMAT.parse(reply(
        ("shop/cart.py", "        return sum(item.price for item in self.items)",
         "return sum(item.price * item.quantity for item in self.items)"),  # indentation dropped, as small models do
        ("shop/cart.py", "    def clear(self):", "    def clear(self):\n        \"\"\"Empty the cart.\"\"\""),
        ("shop/long.py", "value_150 = 150", ""),
    ), FILES.get)
    assert [c.change_type for c in proposal.changes] == [ChangeType.UPDATE, ChangeType.UPDATE]
    apply_changes(tmp_path, proposal.changes)
    cart = (tmp_path / "shop/cart.py").read_text()
    assert "        return sum(item.price * item.quantity for item in self.items)\n" in cart
    assert "    def clear(self):\n        \"\"\"Empty the cart.\"\"\"\n        self.items = []\n" in cart
    assert "value_150 = 150\n" not in (tmp_path / "shop/long.py").read_text()


def test_an_edit_that_changes_nothing_is_dropped():
    proposal = FORMAT.parse(reply(("shop/cart.py", "    def total(self):", "    def total(self):"),
                                  ("shop/cart.py", "    def clear(self):", "    def reset(self):")), FILES.get)
    [change] = proposal.changes
    assert [e.search for e in change.edits] == ["    def clear(self):\n"]


def test_reindent_keeps_relative_depth():
    assert reindent("if x:\n    y()", "        pass") == "        if x:\n            y()"
    assert reindent("", "    a") == ""


def test_a_line_quoted_without_its_indentation_is_repaired_to_the_files_line():
    proposal = FORMAT.parse(reply(("shop/cart.py", "return sum(item.price for item in self.items)", "return 0")),
                            FILES.get)
    assert proposal.changes[0].edits[0].search == "        return sum(item.price for item in self.items)\n"
    assert proposal.changes[0].edits[0].replace == "        return 0\n"


QUOTED = (
    'def greet(name):\n'
    '    """Say hello."""\n'
    '    return f"hello {name}"\n'
    "\n"
    "def tabbed():\n"
    "\treturn 'a\\tb'\n"
    "\n"
    "def accented():\n"
    "    return 'café'\n"
)


def test_anchors_carry_no_backslash_in_json_and_map_back_to_the_files_lines(tmp_path):
    """llama-cpp-python's converter does not escape `\\` in literals (tests/real_model/test_line_edit_grammar.py):
    double quotes become single ones, tabs spaces, and lines that would still need one are not offered."""
    files = {"greet.py": QUOTED}
    found = anchors([{"role": "user", "content": whole_file_block("greet.py", QUOTED)}], files.get)["greet.py"]
    assert "    '''Say hello.'''" in found and "    return f'hello {name}'" in found
    assert "    return 'a\\tb'" not in found and all("\\" not in json.dumps(anchor) for anchor in found)
    assert "    return 'café'" not in found  # JSON writes it \u00e9
    assert anchor_text("\tx = 1") == "    x = 1" and anchor_text("é") is None

    proposal = FORMAT.parse(reply(("greet.py", "    '''Say hello.'''", "    '''Say hello, politely.'''"),
                                  ("greet.py", "    return f'hello {name}'", "    return f'hello, {name}'")),
                            files.get)
    [change] = proposal.changes
    assert [e.search for e in change.edits] == ['    """Say hello."""\n', '    return f"hello {name}"\n']
    (tmp_path / "greet.py").write_text(QUOTED)
    apply_changes(tmp_path, proposal.changes)
    assert "    '''Say hello, politely.'''\n    return f'hello, {name}'\n" in (tmp_path / "greet.py").read_text()
    # the anchor written back as it was changes nothing
    with pytest.raises(ValidationError, match="nothing changes"):
        FORMAT.parse(reply(("greet.py", "    '''Say hello.'''", "    '''Say hello.'''")), files.get)


def test_a_raw_newline_inside_a_string_is_read_as_the_newline_it_means():
    """llama-cpp-python's grammar lets a string hold a raw newline (SmolLM2 wrote one in benchmarks/real_model.py),
    which JSON forbids: the reply is read as meant, not sent back for repair."""
    raw = '{"summary": "Empty the cart.", "edits": [{"file": "shop/cart.py", "line": "    def clear(self):", ' \
          '"replace": "    def clear(self):\n        # Empty it."}]}'
    assert "\n" in raw  # a real newline character inside the JSON string
    [change] = FORMAT.parse(raw, FILES.get).changes
    assert change.edits[0].replace == "    def clear(self):\n        # Empty it.\n"


@pytest.mark.parametrize(("bad", "error"), [
    (reply(("shop/nope.py", "x", "y")), "not a file of this repository"),
    (reply(("shop/cart.py", "        self.items = []", "y")), "occurs once"),
    (reply(("shop/cart.py", "return sum(item.quantity for item in self.items)", "y")), "occurs once"),  # misquoted
    ('{"summary": "x"', "Invalid JSON"),
    (reply(("shop/cart.py", "    def total(self):", "def total(self):")), "nothing changes"),  # a copy, re-indented
])
def test_replies_a_server_did_not_constrain_are_refused_with_errors_the_repair_quotes(bad, error):
    with pytest.raises(ValidationError, match=error):
        FORMAT.parse(bad, FILES.get)


async def test_the_generator_sends_the_narrowed_schema(fake_ollama: FakeOllama):
    good = reply(("shop/cart.py", "    def total(self):", "    def total(self) -> float:"))
    fake_ollama.queue("LineEdits", good)
    generator = Generator(fake_ollama.llm(), model="smollm2:135m", num_ctx=8192, max_output_tokens=512,
                          edit_format="json-line-edits", read_file=FILES.get)
    proposal, [call] = await generator.propose(Task(title="Count quantities"), context(), [])
    sent = fake_ollama.requests[0]["format"]
    assert sent == FORMAT.request_schema(fake_ollama.requests[0]["messages"], FILES.get)
    assert sent["properties"]["edits"]["items"]["anyOf"][0]["properties"]["file"] == {"const": "shop/cart.py"}
    assert proposal.changes[0].edits[0].search == "    def total(self):\n" and call.ok
