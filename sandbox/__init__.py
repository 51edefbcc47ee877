"""Isolated execution of a repository's checks (Docker, with a bubblewrap fallback)."""
