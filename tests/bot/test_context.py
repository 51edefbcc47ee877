"""bot.context: the repository index, search, map, and the generator's context within its budget."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.context import (
    PromptContext,
    RepoIndex,
    build_generator_context,
    code_tokens,
    excerpt_block,
    failure_locations,
)
from bot.records import IterationRecord, IterationStatus, PolicyDecision, Task
from bot.llm.tokens import count_tokens
from sandbox.reports import CheckReport, CheckResult, CheckStatus, FailingTest, TestCounts


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def module_source(i: int, *, functions: int = 6) -> str:
    body = [f'"""Module {i}: inventory helpers."""', "", "import math", ""]
    for f in range(functions):
        body += [
            "",
            f"def compute_value_{i}_{f}(items, factor={f}):",
            f'    """Scale the items of batch {i}."""',
            "    total = 0",
            "    for item in items:",
            "        total += item * factor",
            "    return math.floor(total)",
        ]
    body += ["", "", f"class Warehouse{i}:", "    def __init__(self):", "        self.stock = {}", "",
             "    def restock(self, name, count):", "        self.stock[name] = self.stock.get(name, 0) + count", ""]
    return "\n".join(body)


def generated_repo(root: Path, modules: int = 120) -> Path:
    files: dict[str, str | bytes] = {}
    for i in range(modules):
        files[f"pkg/sub{i % 8}/mod_{i}.py"] = module_source(i)
    files["pkg/billing/invoice_total.py"] = (
        "def invoice_total(lines, tax_rate):\n    subtotal = sum(line.price for line in lines)\n"
        "    return subtotal * (1 + tax_rate)\n"
    )
    files["pkg/big_module.py"] = "\n".join(f"VALUE_{n} = {n}" for n in range(3000)) + (
        "\n\ndef shipping_fee(weight):\n    return weight * 2\n"
    ) + "\n".join(f"OTHER_{n} = {n}" for n in range(3000)) + "\n"
    files["tests/test_billing.py"] = (
        "from pkg.billing.invoice_total import invoice_total\n\n\n"
        "def test_invoice_total():\n    assert invoice_total([], 0.2) == 0\n"
    )
    return write(root, files)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_repo(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def index(repo: Path) -> RepoIndex:
    return RepoIndex.build(repo)


# --- tokens --------------------------------------------------------------------------------------


def test_code_tokens_split_identifiers() -> None:
    tokens = code_tokens("RepoIndex.build_generator_context(HTTPServer, x)")
    for term in ("repo", "index", "repoindex", "build", "generator", "context", "build_generator_context",
                 "http", "server", "httpserver"):
        assert term in tokens
    assert "x" not in tokens  # too short to search for
    assert code_tokens("return self") == []  # stop words


def test_code_tokens_make_plurals_singular_so_words_meet_names() -> None:
    assert code_tokens("stopwords separators entries matches status") == [
        "stopword", "separator", "entry", "match", "status"]
    assert code_tokens("stopwords_lower") == ["stopword", "lower", "stopwords_lower"]  # the identifier stays whole


# --- the index -----------------------------------------------------------------------------------


def test_walk_skips_noise(tmp_path: Path) -> None:
    write(tmp_path, {
        "app/main.py": "def main():\n    pass\n",
        "README.md": "# Demo\n",
        ".venv/lib/site.py": "x = 1\n",
        "node_modules/lib/index.js": "module.exports = 1\n",
        "build/out.py": "x = 1\n",
        ".git/config": "[core]\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "data.txt": b"abc\x00def",
        "latin1.txt": "caf\xe9".encode("latin-1"),
        "huge.py": "x = 1\n" * 50_000,
        "poetry.lock": "[[package]]\n",
    })
    index = RepoIndex.build(tmp_path, max_file_bytes=100_000)
    assert index.paths == ["README.md", "app/main.py"]


def test_git_worktree_uses_git_ls_files(tmp_path: Path) -> None:
    write(tmp_path, {"tracked.py": "A = 1\n", "ignored.py": "B = 2\n", ".gitignore": "ignored.py\n",
                     "build/generated.py": "C = 3\n"})
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "tracked.py", ".gitignore", "build/generated.py"], cwd=tmp_path, check=True)
    write(tmp_path, {"new_untracked.py": "D = 4\n", ".venv/x.py": "E = 5\n"})
    index = RepoIndex.build(tmp_path)
    # tracked files (even under build/), untracked but not ignored files; no ignored files, no virtualenv
    assert index.paths == [".gitignore", "build/generated.py", "new_untracked.py", "tracked.py"]


def test_search_ranks_the_file_with_the_identifier(index: RepoIndex) -> None:
    hits = index.search("invoice total is wrong when the tax rate is zero", k=3)
    assert hits[0][0] == "pkg/billing/invoice_total.py"
    assert all(score > 0 for _, score in hits)
    assert index.search("", k=3) == []
    assert index.search("zzzzqqq", k=3) == []


def test_repo_map_lists_definitions_within_budget(index: RepoIndex) -> None:
    generous = index.repo_map(100_000)
    assert "pkg/billing/invoice_total.py\n  def invoice_total(lines, tax_rate)" in generous
    assert "class Warehouse3: __init__, restock" in generous
    for budget in (30, 300, 3000):
        text = index.repo_map(budget)
        assert 0 < count_tokens(text) <= budget
    small = index.repo_map(300)
    assert "more directories" in small


def test_repo_map_details_preferred_directories_first(index: RepoIndex) -> None:
    text = index.repo_map(1500, prefer=["pkg/billing/invoice_total.py"])
    assert "def invoice_total(lines, tax_rate)" in text
    assert count_tokens(text) <= 1500


def test_repo_map_other_languages(tmp_path: Path) -> None:
    write(tmp_path, {
        "web/app.ts": "export class Cart {}\nexport function addItem(cart, item) {}\nconst helper = () => 1\n",
        "svc/main.go": "package main\n\nfunc HandleOrder(w http.ResponseWriter) {}\ntype Order struct {}\n",
        "broken.py": "def ok(:\n",
    })
    text = RepoIndex.build(tmp_path).repo_map(10_000)
    assert "web/app.ts\n  Cart\n  addItem\n  helper" in text
    assert "svc/main.go\n  HandleOrder\n  Order" in text
    assert "broken.py" in text


def test_refresh_updates_changed_added_and_removed_files(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "def alpha():\n    pass\n", "b.py": "def beta():\n    pass\n"})
    index = RepoIndex.build(tmp_path)
    assert index.search("gamma")[:1] == []
    write(tmp_path, {"a.py": "def gamma_ray():\n    pass\n", "c.py": "def delta():\n    pass\n"})
    (tmp_path / "b.py").unlink()
    index.refresh(["a.py", "b.py", "c.py", "../outside.py"])
    assert index.paths == ["a.py", "c.py"]
    assert index.search("gamma ray")[0][0] == "a.py"
    assert "def gamma_ray()" in index.repo_map(1000)


def test_resolve_mention(index: RepoIndex) -> None:
    assert index.resolve_mention("pkg/billing/invoice_total.py") == "pkg/billing/invoice_total.py"
    assert index.resolve_mention("`invoice_total.py`,") == "pkg/billing/invoice_total.py"  # unique name
    assert index.resolve_mention("pkg.billing.invoice_total") == "pkg/billing/invoice_total.py"  # module
    assert index.resolve_mention("/workspace/repo/pkg/sub1/mod_1.py") == "pkg/sub1/mod_1.py"  # sandbox path
    assert index.resolve_mention("/usr/lib/python3.11/site-packages/pkg/sub1/mod_1.py") is None
    assert index.resolve_mention("nothing.py") is None


# --- excerpts ------------------------------------------------------------------------------------


def test_excerpt_is_whole_when_it_fits_and_cut_with_line_numbers_otherwise() -> None:
    text = "".join(f"line_{n} = {n}\n" for n in range(1, 1001))
    whole = excerpt_block("a.py", text, [500], 100_000)
    assert whole.startswith("### a.py\n```python\nline_1 = 1\n") and whole.endswith("line_1000 = 1000\n```")
    cut = excerpt_block("a.py", text, [500, 20], 400)
    assert count_tokens(cut) <= 400
    assert "(excerpt; 1000 lines in all)" in cut
    assert "line_500 = 500" in cut and "line_20 = 20" in cut
    assert "line_800 = 800" not in cut
    first_range = cut.split("\nlines ", 1)[1].split(":", 1)[0]
    start, end = map(int, first_range.split("-"))
    assert start <= 20 <= end
    assert excerpt_block("a.py", text, [1], 10) is None


def test_excerpt_fence_survives_backticks() -> None:
    block = excerpt_block("README.md", "Use:\n```\nrun\n```\n", [], 1000)
    assert block.startswith("### README.md\n````markdown\n") and block.endswith("\n````")


# --- the generator's context ---------------------------------------------------------------------


def failing_previous(traceback: str, *, diff: str = "", apply_error: str | None = None) -> IterationRecord:
    report = CheckReport(
        backend="test",
        pass_rate=0.5,
        checks=[CheckResult(
            name="tests", command=["pytest"], status=CheckStatus.FAILED, tests=TestCounts(passed=1, failed=1),
            failing_tests=[FailingTest(test_id="tests/test_billing.py::test_invoice_total",
                                       message="TypeError: unsupported operand", traceback=traceback)],
        )],
    )
    return IterationRecord(
        run_id="r", episode_id="e", number=2, proposal_id="p", status=IterationStatus.REJECTED,
        check_report=report, diff=diff, apply_error=apply_error,
        policy=PolicyDecision(allowed=False, violations=["Changing `.env` is not allowed."]),
    )


TRACEBACK = (
    'Traceback (most recent call last):\n'
    '  File "/workspace/tests/test_billing.py", line 5, in test_invoice_total\n'
    '    assert invoice_total([], 0.2) == 0\n'
    '  File "/workspace/pkg/sub3/mod_3.py", line 22, in compute_value_3_2\n'
    '    total += item * factor\n'
    '  File "/usr/lib/python3.11/site-packages/pluggy/_hooks.py", line 9, in __call__\n'
    "TypeError: unsupported operand\n"
)


def section(context: PromptContext, title_start: str) -> str:
    found = [s.body for s in context.sections if s.title.startswith(title_start)]
    assert found, [s.title for s in context.sections]
    return found[0]


@pytest.mark.parametrize("budget", [200, 1000, 4096, 16384])
def test_context_stays_within_budget(index: RepoIndex, budget: int) -> None:
    task = Task(title="invoice_total ignores discounts", body="See pkg/billing/invoice_total.py and pkg/big_module.py",
                files=["pkg/sub1/mod_1.py"])
    context = build_generator_context(index, task, budget_tokens=budget,
                                      previous=failing_previous(TRACEBACK, diff="+x\n" * 5000))
    assert context.tokens <= budget
    assert sum(s.tokens for s in context.sections) <= budget
    assert context.budget_tokens == budget
    if budget >= 4096:
        titles = [s.title for s in context.sections]
        if budget == 4096:  # mod_3.py is too big to be shown whole: compute_value_3_2 (traceback) is located
            assert titles.pop(0).startswith("Code the task is about")
        assert titles[0] == "Files named in the task"
        assert titles[1] == "Files in the failing tests' tracebacks"
        assert titles[2].startswith("Your previous attempt (iteration 2)")
        assert titles[-1].startswith("Repository map")


def test_task_files_and_traceback_files_are_included(index: RepoIndex) -> None:
    task = Task(title="Fix the invoice total", body="The bug is in `pkg/billing/invoice_total.py`.")
    context = build_generator_context(index, task, budget_tokens=16384, previous=failing_previous(TRACEBACK))
    named = section(context, "Files named in the task")
    assert "### pkg/billing/invoice_total.py\n```python\ndef invoice_total(lines, tax_rate):" in named
    failures = section(context, "Files in the failing tests' tracebacks")
    assert "### pkg/sub3/mod_3.py" in failures
    assert "### tests/test_billing.py" in failures
    assert "pluggy" not in failures


def test_traceback_lines_of_a_large_file_are_shown(index: RepoIndex) -> None:
    big = (index.text("pkg/big_module.py") or "").splitlines()
    fee_line = big.index("def shipping_fee(weight):") + 1
    traceback = f'  File "/sandbox/src/pkg/big_module.py", line {fee_line}, in shipping_fee\nNameError: x\n'
    context = build_generator_context(index, Task(title="shipping"), budget_tokens=4096,
                                      previous=failing_previous(traceback))
    body = section(context, "Files in the failing tests' tracebacks")
    assert "### pkg/big_module.py (excerpt; 6003 lines in all)" in body
    assert "def shipping_fee(weight):" in body
    assert "VALUE_5 = 5\n" not in body  # the start of the file was not what mattered


def test_previous_attempt_section(index: RepoIndex) -> None:
    previous = failing_previous(TRACEBACK, diff="--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n",
                                apply_error="Edit 1 of 2 for `x.py` did not apply")
    context = build_generator_context(index, Task(title="fix"), budget_tokens=8000, previous=previous)
    body = section(context, "Your previous attempt (iteration 2): rejected")
    assert "Edit 1 of 2 for `x.py` did not apply" in body
    assert "- Changing `.env` is not allowed." in body
    assert "FAILED tests/test_billing.py::test_invoice_total: TypeError: unsupported operand" in body
    assert "```diff\n--- a/x.py\n+++ b/x.py" in body


def test_report_summary_is_used_when_the_report_has_one(index: RepoIndex) -> None:
    class SummarisedReport(CheckReport):
        def summary(self) -> str:
            return "SUMMARY FROM THE SANDBOX"

    previous = failing_previous(TRACEBACK)
    previous.check_report = SummarisedReport(**previous.check_report.model_dump())
    context = build_generator_context(index, Task(title="fix"), budget_tokens=8000, previous=previous)
    assert "SUMMARY FROM THE SANDBOX" in section(context, "Your previous attempt")


def test_missing_task_file_is_noted_and_search_finds_related_code(index: RepoIndex) -> None:
    task = Task(title="Add a discount to invoice_total", files=["pkg/billing/discounts.py"])
    context = build_generator_context(index, task, budget_tokens=16384)
    assert "### pkg/billing/discounts.py\n(This file does not exist yet.)" in section(context, "Files named")
    assert "### pkg/billing/invoice_total.py" in section(context, "Related code")


def test_failure_locations_from_lint_output(index: RepoIndex) -> None:
    report = CheckReport(backend="test", checks=[CheckResult(
        name="lint", command=["ruff"], status=CheckStatus.FAILED,
        output="pkg/sub2/mod_2.py:3:1: F401 `math` imported but unused\nFound 1 error.\n",
    )])
    assert failure_locations(index, report) == {"pkg/sub2/mod_2.py": [3]}


def test_empty_repository(tmp_path: Path) -> None:
    context = build_generator_context(RepoIndex.build(tmp_path), Task(title="Start a project"), budget_tokens=1000)
    assert context.sections == [] and context.render() == ""
