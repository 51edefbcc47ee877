"""Host processes with a hard wall-clock timeout and bounded output (used by bubblewrap and local)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping

from sandbox.base import CommandResult, OutputBuffer, looks_out_of_memory


async def run_process(
    argv: list[str],
    *,
    shown_argv: list[str] | None = None,
    timeout: float,
    output_limit: int,
    env: Mapping[str, str],
    cwd: str | None = None,
    user: int | None = None,
) -> CommandResult:
    """Run `argv` in its own session; on timeout kill its whole process group. The result shows
    `shown_argv` (the command inside a wrapper) when given."""
    started = time.monotonic()
    extra = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            **extra,
        )
    except (FileNotFoundError, PermissionError) as exc:  # as a shell reports it: a failed command, not a crash
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return CommandResult(argv=shown_argv or argv, exit_code=code, output=f"{argv[0]}: {exc.strerror}\n",
                             duration_s=time.monotonic() - started)
    buffer = OutputBuffer(output_limit)

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buffer.feed(chunk)

    reader = asyncio.ensure_future(pump())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:  # timed out or cancelled
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    # descendants that left the process group may still hold the pipe: don't wait for them for long
    try:
        await asyncio.wait_for(reader, 5 if not timed_out else 1)
    except TimeoutError:
        reader.cancel()
    code = None if timed_out else proc.returncode
    output = buffer.text()
    return CommandResult(argv=shown_argv or argv, exit_code=code, output=output,
                         duration_s=time.monotonic() - started, timed_out=timed_out,
                         oom=not timed_out and looks_out_of_memory(code, output), truncated=buffer.truncated)
