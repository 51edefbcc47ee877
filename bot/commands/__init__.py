"""CLI command groups of the bot."""
