"""Sandbox overheads: per-command cost of a warm session, Docker cold start, a warm check of a tiny repo,
and the environment cache.

- per-command overhead for `python -c pass` (median over --runs): a warm Docker session (exec) and
  bubblewrap against a bare host subprocess run by the same harness; targets ≤ 150 ms median extra for
  Docker, ≤ 30 ms for bubblewrap;
- cold start of a Docker session (open_sandbox without setup: container create + start + workspace copy)
  and its teardown;
- a warm `check` of a tiny Python repository (syntax, lint, tests) per backend: what each cycle
  iteration pays;
- environment cache: the setup of a repository with a pyproject.toml (editable install with test extras,
  from PyPI) the first time, against the second time on the same dependency files; target ≥ 10×.

    .venv/bin/python benchmarks/sandbox_bench.py [--runs 30] [--backends docker,bwrap]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import SandboxSettings, open_sandbox  # noqa: E402
from sandbox.box import backend_class  # noqa: E402
from sandbox.plans import detect_plan  # noqa: E402
from sandbox.process import run_process  # noqa: E402

TINY = {"calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
                              "def test_more():\n    assert add(2, 2) == 4\n"}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def package(root: Path) -> Path:
    marker = uuid.uuid4().hex  # a fresh dependency hash: the first setup really runs
    return write_tree(root, {
        "pyproject.toml": ("[build-system]\nrequires = ['setuptools>=61']\nbuild-backend = 'setuptools.build_meta'\n"
                           f"[project]\nname = 'benchpkg'\nversion = '0.1.0'\ndescription = '{marker}'\n"
                           "[project.optional-dependencies]\ntest = ['iniconfig']\n"),
        "src/benchpkg/__init__.py": "def double(x):\n    return 2 * x\n",
        "tests/test_double.py": "from benchpkg import double\n\n\ndef test_double():\n    assert double(2) == 4\n",
    })


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def host_command() -> float:
    started = time.monotonic()
    await run_process(["/usr/bin/python3", "-c", "pass"], timeout=60, output_limit=20000, env={"PATH": "/usr/bin:/bin"})
    return time.monotonic() - started


async def boxed_command(box) -> float:
    started = time.monotonic()
    result = await box.run(["python", "-c", "pass"])
    assert result.ok, result.output
    return time.monotonic() - started


async def command_overheads(backends: list[str], repo: Path, runs: int) -> dict[str, list[float]]:
    """Round-robin host / backend / backend..., so that load from elsewhere on the machine hits all alike;
    returns per-round times for "host" and each backend."""
    times: dict[str, list[float]] = {"host": [], **{b: [] for b in backends}}
    async with AsyncExitStack() as stack:
        boxes = {b: await stack.enter_async_context(open_sandbox(SandboxSettings(backend=b), repo)) for b in backends}
        for box in boxes.values():
            await boxed_command(box)  # warm caches
        await host_command()
        for _ in range(runs):
            times["host"].append(await host_command())
            for name, box in boxes.items():
                times[name].append(await boxed_command(box))
    return times


async def session_figures(backend: str, repo: Path) -> dict[str, float]:
    settings = SandboxSettings(backend=backend)
    started = time.monotonic()
    async with open_sandbox(settings, repo) as box:
        opened = time.monotonic() - started
        checks = []
        for _ in range(5):
            t = time.monotonic()
            report = await box.check(repo)
            checks.append(time.monotonic() - t)
            assert report.pass_rate == 1.0, report.summary()
        closing = time.monotonic()
    closed = time.monotonic() - closing
    return {"open": opened, "check": statistics.median(checks), "close": closed}


async def cache_figures(backend: str, tmp: Path) -> tuple[float, float]:
    repo = package(tmp / f"pkg-{backend}")
    settings = SandboxSettings(backend=backend)

    async def setup_time(remove_after: bool) -> float:
        backend_obj = backend_class(backend)(settings)
        plan = detect_plan(repo)
        started = time.monotonic()
        await backend_obj.prepare(plan, repo)
        seconds = time.monotonic() - started
        if remove_after:  # the benchmark's environment has a hash of its own: don't leave it in the cache
            if backend == "docker":
                backend_obj.client.images.remove(backend_obj.image, force=True)
            else:
                shutil.rmtree(backend_obj.env_dir)
                backend_obj.env_dir.with_name(backend_obj.env_dir.name + ".ready").unlink()
        await backend_obj.close()
        return seconds

    return await setup_time(False), await setup_time(True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backends", default="docker,bwrap")
    args = parser.parse_args()
    backends = []
    for name in args.backends.split(","):
        reason = backend_class(name).unavailable_reason(SandboxSettings(backend=name))
        if reason:
            print(f"{name}: skipped ({reason})")
        else:
            backends.append(name)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo = write_tree(tmp / "tiny", TINY)
        times = await command_overheads(backends, repo, args.runs)
        host = statistics.median(times["host"])
        print(f"python -c pass, {args.runs} rounds (host and each backend in turn), medians:")
        print(f"  host subprocess:                       {ms(host)}")
        for name in backends:
            extra = statistics.median(b - h for b, h in zip(times[name], times["host"], strict=True))
            target = {"docker": 0.150, "bwrap": 0.030}[name]
            print(f"  {name + ' (warm session):':38} {ms(statistics.median(times[name]))}   extra over host: {ms(extra)}"
                  f"  (target ≤ {target * 1000:.0f} ms: {'met' if extra <= target else 'MISSED'})")
        for name in backends:
            figures = await session_figures(name, repo)
            print(f"\n[{name}]")
            print(f"  open (cold start, no setup):           {ms(figures['open'])}")
            print(f"  close:                                 {ms(figures['close'])}")
            print(f"  check of a tiny repo, warm (median/5): {ms(figures['check'])}")
            first, second = await cache_figures(name, tmp)
            ratio = first / second if second else float("inf")
            print(f"  setup, first (PyPI):                   {ms(first)}")
            print(f"  setup, second (cached):                {ms(second)}   speed-up {ratio:6.1f}×"
                  f"  (target ≥ 10×: {'met' if ratio >= 10 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
