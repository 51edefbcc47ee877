"""Evaluation on SWE-bench-format instances (`aura-sicd eval swebench`): real repositories, hidden tests,
SWE-bench's rule and file formats, so solve rates compare with published numbers.

    instances.py  the instance format, loading and validation
    repos.py      the repositories offline (--repos DIR), mirrored and cloned per instance
    oracle.py     the oracle model: the gold patch as the generator's answer
    hidden.py     the hidden tests on the result, and SWE-bench's resolution rule
    run.py        per instance and model: the full cycle, then the hidden tests; parallel, resumable
    report.py     results, predictions.jsonl, report.json, bootstrap intervals, comparing two reports
    build.py      a bug-fix commit (or a toy program) made into an instance
"""
