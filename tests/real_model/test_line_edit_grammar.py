"""The json-line-edits schema compiles to a grammar llama.cpp accepts, for real projects' files.

llama-cpp-python (0.3.x) turns a JSON schema into a GBNF grammar with its own converter, which escapes
`"` in `enum`/`const` literals but not `\\`; a line such as `    \"\"\"Docstring.\"\"\"` became a grammar
llama.cpp could not parse, `llama_sampler_init_grammar` returned NULL and the server died of a segfault
on the first sampled token (issue 19). This test runs the same converter and llama.cpp's own parser
(through the model's vocabulary only, no weights) on schemas built from whole files of real projects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.context.excerpts import whole_file_block
from bot.edit_formats import get_format
from bot.edit_formats.line_edits import MAX_ANCHORS, anchors
from bot.runs.realtasks import clone_bundle
from tests.backends import require
from tests.llama_server import gguf_path

pytestmark = pytest.mark.real_model
DATA = Path(__file__).resolve().parent.parent / "data" / "realrepos"
FORMAT = get_format("json-line-edits")
# Python with docstrings and escapes, Go indented with tabs, TypeScript with regexes
PROJECTS = [("tomli", "master", "src/tomli/_parser.py"), ("humanize", "main", "src/humanize/time.py"),
            ("pflag", "master", "flag.go"), ("path-to-regexp", "master", "src/index.ts")]


class GrammarCompiler:
    def __init__(self) -> None:
        from llama_cpp import Llama

        self.model = Llama(str(gguf_path()), vocab_only=True, verbose=False)

    def compiles(self, schema: dict) -> bool:
        """Whether llama-cpp-python's converter and llama.cpp's parser make a grammar of `schema`, as the
        server does for a request's response_format."""
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        sampler = llama_cpp.llama_sampler_init_grammar(
            self.model._model.vocab, grammar._grammar.encode(), grammar._root.encode())
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True


@pytest.fixture(scope="module")
def compiler() -> Iterator[GrammarCompiler]:
    require("real_model")
    compiler = GrammarCompiler()
    yield compiler
    compiler.model.close()


@pytest.mark.parametrize(("bundle", "branch", "path"), PROJECTS)
def test_a_real_files_anchors_compile_to_a_grammar(compiler, tmp_path, bundle, branch, path):
    repo = clone_bundle(DATA / f"{bundle}.bundle", branch, tmp_path / bundle)
    text = (repo / path).read_text()
    lines = text.splitlines()
    # windows of the file as the prompt shows them, each with its own anchors
    windows = [lines[start:start + MAX_ANCHORS] for start in range(0, len(lines), MAX_ANCHORS)]
    offered = 0
    for window in windows:
        messages = [{"role": "user", "content": whole_file_block(path, "\n".join(window) + "\n")}]
        schema = FORMAT.request_schema(messages, {path: text}.get)
        assert compiler.compiles(schema), schema
        offered += sum(len(found) for found in anchors(messages, {path: text}.get).values())
    # quotes and tabs no longer cost anchors: most unique lines are offered
    unique = {line for line in lines if line.strip() and lines.count(line) == 1}
    assert offered >= 0.8 * len(unique), (offered, len(unique))


def test_a_schema_with_a_quoted_docstring_line_did_not_compile(compiler):
    """The shape that killed the server, kept as the proof of the cause: a literal with `\\"` in it."""
    schema = {"type": "object", "properties": {"line": {"enum": ['    """Return the sum of a and b."""']}},
              "required": ["line"]}
    assert not compiler.compiles(schema)
    schema["properties"]["line"]["enum"] = ["    '''Return the sum of a and b.'''"]
    assert compiler.compiles(schema)
