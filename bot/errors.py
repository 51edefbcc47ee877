"""Errors that cross module boundaries."""


class ConfigError(Exception):
    """A problem the user fixes in their configuration; printed without a traceback, exit code 2."""


class UnknownEditFormat(ValueError):
    """An edit format name that is not one of `bot.config.EDIT_FORMATS`."""
