"""The HTTP surface: the GitHub webhook receiver, admin API and dashboard."""
