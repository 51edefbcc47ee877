"""`aura-sicd`: the command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bot import __version__
from bot.errors import ConfigError

# Modules that add subcommands: each has `register(subparsers)` and sets `func` on its parsers;
# `func(args)` returns the exit code. Exit codes: 0 success, 1 the work failed, 2 configuration error.
COMMAND_MODULES = [
    "bot.commands.improve",
    "bot.commands.episodes",
    "bot.commands.serve",
    "bot.commands.worker",
    "sandbox.cli",
    "bot.commands.bench",
    "bot.commands.export",
    "bot.commands.eval",
    "bot.commands.learning",
    "bot.commands.mcp",
    "bot.commands.scan",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="aura-sicd", description="Self-Improving Code Development")
    parser.add_argument("--version", action="version", version=f"aura-sicd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)  # a module that fails to import fails the command line
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except ConfigError as exc:
        print(f"aura-sicd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
