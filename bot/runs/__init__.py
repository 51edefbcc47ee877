"""Drivers that run many episodes: scan, training runs, the eval harness, SWE-bench instances and real tasks from history."""
