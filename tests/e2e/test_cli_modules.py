"""The command line registers every command module; one that fails to import fails it, loudly."""

from __future__ import annotations

import pytest

from bot import cli


def test_every_command_module_registers():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"improve", "episodes", "serve", "worker", "sandbox"} <= set(commands)


def test_a_command_module_that_fails_to_import_fails_the_command_line(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "bot.commands.no_such_command"])
    with pytest.raises(ModuleNotFoundError, match="bot.commands.no_such_command"):
        cli.build_parser()
