"""Errors that cross module boundaries."""


class ConfigError(Exception):
    """A problem the user fixes in their configuration; printed without a traceback, exit code 2."""
