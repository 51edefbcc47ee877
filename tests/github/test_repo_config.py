from __future__ import annotations

import pytest

from bot.config import Settings
from bot.github.repo_config import RepoConfigInvalid, load_repo_config, parse_repo_config

FULL = """
label: please-fix
max_iterations: 3
models: {generator: qwen2.5-coder:14b}
allow_paths: ["src/**"]
deny_paths: [".github/workflows/**"]
setup: pip install -e .
checks:
  - {name: tests, run: pytest -q}
draft_pr_on_failure: false
"""


def test_full_config_applies_on_top_of_settings():
    config = parse_repo_config(FULL)
    settings = config.apply(Settings(_env_file=None))
    assert (settings.trigger_label, settings.max_iterations, settings.generator_model) == ("please-fix", 3, "qwen2.5-coder:14b")
    assert settings.discriminator_model == Settings(_env_file=None).discriminator_model  # untouched
    assert settings.allow_paths == ["src/**"] and settings.draft_pr_on_failure is False
    assert config.checks[0].name == "tests" and config.setup == "pip install -e ."


def test_absent_or_empty_file_gives_defaults(tmp_path):
    assert load_repo_config(tmp_path) == parse_repo_config("")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "aura-sicd.yml").write_text("max_iterations: 2\n")
    assert load_repo_config(tmp_path).max_iterations == 2


def test_every_problem_is_listed_and_defaults_are_not_used():
    with pytest.raises(RepoConfigInvalid) as info:
        parse_repo_config("lable: x\nmax_iterations: 0\nmodels: {generatr: a}\n")
    errors = info.value.errors
    assert "lable: unknown key (known keys: allow_paths, autonomy, check_timeout_s, checks, deny_paths, " \
           "draft_pr_on_failure, image, label, max_iterations, models, post_setup_output, setup, test_timeout_s)" in errors
    assert any(e.startswith("max_iterations: Input should be greater than or equal to 1") for e in errors)
    assert any(e.startswith("models.generatr: unknown key") for e in errors)
    assert len(errors) == 3


def test_not_yaml_or_not_a_mapping():
    with pytest.raises(RepoConfigInvalid, match="not valid YAML"):
        parse_repo_config("label: [unclosed")
    with pytest.raises(RepoConfigInvalid, match="must be a mapping"):
        parse_repo_config("- a\n- b\n")


def test_deny_paths_add_to_the_operators_list_and_allow_paths_cannot_reopen_them(tmp_path):
    from bot.cycle.policy import Policy

    base = Settings(_env_file=None, deny_paths=["vendor/**"])
    settings = parse_repo_config('deny_paths: ["secrets/**"]\nallow_paths: [".github/**", "src/**"]\n').apply(base)
    assert settings.deny_paths == ["vendor/**", "secrets/**"]
    policy = Policy.from_settings(settings)
    assert "protected pattern `vendor/**`" in policy.path_violation("vendor/x.py", tmp_path)
    # the bot's own configuration is refused even when no list names it
    assert "protected pattern `.github/aura-sicd.yml`" in policy.path_violation(".github/aura-sicd.yml", tmp_path)
    assert policy.path_violation("src/a.py", tmp_path) is None
