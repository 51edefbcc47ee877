"""Learning across runs (docs/learning.md): guidance memory, pattern library, model-selection bandit,
training data export, retention, benchmarks of progress, the evaluation harness and training runs."""
