"""The plain-text edit formats (search-replace, whole-file), the format per model, and the model's token counter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.edit_formats import edit_format_for, format_for_model, get_format
from bot.edit_formats.text_blocks import WHOLE_FILE_MAX_LINES
from bot.edits import apply_changes
from bot.llm.client import describe_validation_error
from bot.records import ChangeType, Task
from bot.roles import Generator
from bot.roles.prompting import load_prompt
from bot.llm.tokens import TokenCounter, count_message_tokens
from tests.fakes.ollama import FakeOllama

CALC = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n'
FILES = {"calc.py": CALC}

BLOCKS = '''Summary: add() subtracted; it adds now, with a test.

calc.py
```python
<<<<<<< SEARCH
    """Return the sum of a and b."""
    return a - b
=======
    """Return the sum of a and b."""
    return a + b
>>>>>>> REPLACE
```

`tests/test_add.py`
<<<<<<< SEARCH
=======
from calc import add


def test_add():
    assert add(2, 3) == 5
>>>>>>> REPLACE

DELETE old_calc.py
'''


def test_search_replace_blocks_read_code_as_written():
    proposal = get_format("search-replace").parse(BLOCKS, FILES.get)
    assert proposal.summary == "add() subtracted; it adds now, with a test."
    update, create, delete = proposal.changes
    assert (update.file_path, update.change_type) == ("calc.py", ChangeType.UPDATE)
    assert update.edits[0].search == '    """Return the sum of a and b."""\n    return a - b\n'
    assert update.edits[0].replace.endswith("return a + b\n")
    assert (create.file_path, create.change_type) == ("tests/test_add.py", ChangeType.CREATE)
    assert create.new_content.startswith("from calc import add\n") and '"' not in create.new_content
    assert (delete.file_path, delete.change_type) == ("old_calc.py", ChangeType.DELETE)


def test_blocks_apply_like_any_proposal(tmp_path):
    (tmp_path / "calc.py").write_text(CALC)
    (tmp_path / "old_calc.py").write_text("x = 1\n")
    proposal = get_format("search-replace").parse(BLOCKS, lambda p: (tmp_path / p).read_text() if (tmp_path / p).exists() else None)
    apply_changes(tmp_path, proposal.changes)
    assert "return a + b" in (tmp_path / "calc.py").read_text()
    assert (tmp_path / "tests/test_add.py").is_file() and not (tmp_path / "old_calc.py").exists()


def test_several_blocks_of_one_file_are_one_change_with_ordered_edits():
    reply = "Summary: two fixes.\n\ncalc.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n"
    [change] = get_format("search-replace").parse(reply).changes
    assert [(e.search, e.replace) for e in change.edits] == [("a\n", "b\n"), ("c\n", "d\n")]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("calc.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", "no `Summary:` line"),
        ("Summary: s\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", "no file path on the line before it"),
        ("Summary: s\ncalc.py\n<<<<<<< SEARCH\na\n=======\nb\n", "not closed with >>>>>>> REPLACE (was the reply cut off?)"),
        ("Summary: s\ncalc.py\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", "has no ======= line"),
        ("Summary: s\ncalc.py\n<<<<<<< SEARCH\n=======\nb\n>>>>>>> REPLACE\n", "`calc.py` exists: an empty SEARCH only creates"),
        ("Summary: s\n<<<<<<< FILE calc.py\nx\n>>>>>>> END\n", "this format has no FILE blocks"),
    ],
)
def test_unreadable_replies_raise_errors_the_repair_request_quotes(reply, error):
    with pytest.raises(ValidationError) as caught:
        get_format("search-replace").parse(reply, FILES.get)
    assert error in describe_validation_error(caught.value)


def test_whole_file_blocks_replace_existing_files_through_an_edit_and_create_new_ones(tmp_path):
    reply = ("Summary: fix add.\n\n<<<<<<< FILE calc.py\ndef add(a, b):\n    return a + b\n>>>>>>> END\n\n"
             "<<<<<<< FILE tests/test_calc.py\nfrom calc import add\n>>>>>>> END\n")
    (tmp_path / "calc.py").write_text(CALC)
    update, create = get_format("whole-file").parse(reply, FILES.get).changes
    assert update.change_type is ChangeType.UPDATE and [(e.search, e.replace) for e in update.edits] == [
        (CALC, "def add(a, b):\n    return a + b\n")
    ]
    assert create.change_type is ChangeType.CREATE and create.new_content == "from calc import add\n"
    apply_changes(tmp_path, [update, create])
    assert (tmp_path / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_whole_file_refuses_large_files_and_unclosed_blocks():
    big = "x = 1\n" * (WHOLE_FILE_MAX_LINES + 1)
    with pytest.raises(ValidationError, match="too many to rewrite whole"):
        get_format("whole-file").parse("Summary: s\n<<<<<<< FILE big.py\ny\n>>>>>>> END\n", {"big.py": big}.get)
    with pytest.raises(ValidationError, match="not closed with >>>>>>> END"):
        get_format("whole-file").parse("Summary: s\n<<<<<<< FILE calc.py\ny\n", FILES.get)
    # larger files take SEARCH/REPLACE blocks in this format too
    reply = "Summary: s\nbig.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
    assert get_format("whole-file").parse(reply, {"big.py": "x = 1\n"}.get).changes[0].edits[0].replace == "x = 2\n"


def test_a_summary_alone_is_no_change():
    assert get_format("whole-file").parse("Summary: nothing to do, add() is right.").changes == []


def test_text_format_prompts_have_no_copyable_paths_and_no_json():
    for name in ("search-replace", "whole-file", "json-search-replace"):
        prompt = load_prompt("generator", name)
        assert "src/shop" not in prompt.system.template and "cart.py" not in prompt.system.template
        assert "<the path of" in prompt.system.template
    assert "JSON" not in load_prompt("generator", "whole-file").system.template


async def test_a_text_format_sends_no_schema_and_parses_with_the_files(fake_ollama: FakeOllama):
    fake_ollama.queue("", "Summary: fix.\n<<<<<<< FILE calc.py\ndef add(a, b):\n    return a + b\n>>>>>>> END\n")
    generator = Generator(fake_ollama.llm(), model="smollm2:135m", num_ctx=8192, max_output_tokens=512,
                          edit_format="whole-file", read_file=FILES.get)
    proposal, [call] = await generator.propose(Task(title="fix add"), "### calc.py\n" + CALC, [])
    assert "format" not in fake_ollama.requests[0]
    assert proposal.changes[0].edits[0].search == CALC and call.ok


def test_format_per_model_then_setting_then_family_then_default(monkeypatch):
    assert format_for_model("qwen2.5-coder:7b") == "json-search-replace"  # the documented default
    assert format_for_model("smollm2:135m") == "whole-file"
    assert format_for_model("hf.co/bartowski/deepseek-coder-v2-lite-instruct-GGUF") == "search-replace"
    assert format_for_model("smollm2:135m", chosen="json-search-replace") == "json-search-replace"
    assert format_for_model("smollm2:135m", {"smollm2*": "search-replace"}, "json-search-replace") == "search-replace"
    assert edit_format_for(Settings(), "smollm2") == "whole-file"
    monkeypatch.setenv("AURA_EDIT_FORMAT", "search-replace")
    assert edit_format_for(Settings(), "smollm2") == "search-replace"  # set explicitly: it wins over the family
    monkeypatch.setenv("AURA_EDIT_FORMATS", '{"qwen2.5-coder:*": "whole-file"}')
    assert edit_format_for(Settings(), "qwen2.5-coder:32b") == "whole-file"
    monkeypatch.setenv("AURA_EDIT_FORMATS", '{"x": "udiff"}')
    with pytest.raises(ValidationError, match="unknown edit format 'udiff'"):
        Settings()


def test_the_counter_learns_a_denser_tokenizer_and_never_loosens():
    counter = TokenCounter()
    messages = [{"role": "user", "content": "def gcd(a, b):\n    return a\n" * 40}]
    assert counter.count_messages(messages) == count_message_tokens(messages)  # uncalibrated: the module's estimate
    size = len(messages[0]["content"].encode())
    counter.calibrate(messages, round(size / 2.4) + 8)  # SmolLM2-like: 2.4 bytes per token
    assert 2.2 < counter.bytes_per_token < 2.4 and counter.measured
    assert counter.count_messages(messages) >= round(size / 2.4) + 8  # now on the safe side of the server's count
    counter.calibrate(messages, round(size / 4) + 8)  # a looser count later does not undo it
    assert counter.bytes_per_token < 2.4
    assert counter.to_estimate(3000) < 3000  # what bot/context may fill, in its 3-bytes-per-token units
    counter.calibrate([{"role": "user", "content": "hi"}], 500)  # too little text to learn from
    assert counter.bytes_per_token > 2.2


async def test_ollama_window_comes_from_api_show_and_caps_num_ctx(fake_ollama: FakeOllama):
    llm = fake_ollama.llm()
    assert await llm.context_window("qwen2.5:7b", 16384) == 16384  # a server without /api/show: the setting
    fake_ollama.context_length = 8192
    llm = fake_ollama.llm()
    assert await llm.context_window("smollm2:135m", 16384) == 8192  # never more than the model has
    assert await llm.context_window("smollm2:135m", 4096) == 4096
