"""Aura SICD: the generate → test → score → guide cycle and everything it knows."""

__version__ = "0.1.0"
