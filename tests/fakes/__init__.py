"""Fakes of external services at the HTTP level, shared by the test suites."""
