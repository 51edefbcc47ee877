"""Check plans and report parsers for the languages beyond Python, JavaScript and Go: one module each,
holding the language's plan (what sandbox/plans.py's detect_plan uses) and the parser of its test
runner's report (what sandbox/runner.py's judge uses)."""
