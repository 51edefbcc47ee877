"""`.github/aura-sicd.yml`: a repository's own settings for the bot.

Every key is optional; unknown keys are errors (a typo must not silently fall back to a default). An
invalid file stops the job with a comment listing what is wrong — the defaults are never used instead.
The sandbox's keys (`setup`, `checks`, `image`) are `sandbox.repo_config.SandboxRepoConfig`'s, reused.

```yaml
label: aura-sicd
max_iterations: 5
models: {generator: qwen2.5-coder:7b, discriminator: qwen2.5:7b, agitator: qwen2.5:7b}
allow_paths: ["src/**", "tests/**"]
deny_paths: ["migrations/**"]  # added to the defaults, which always apply
setup: pip install -e .[test]
checks: [{name: tests, run: pytest -q}]
draft_pr_on_failure: true
post_setup_output: false  # a failed setup's comment says why, without the end of its output
autonomy: {schedule: "0 3 * * 1", max_open_prs: 3}  # scheduled scans (needs ENABLE_AUTONOMY, SAFE_MODE off)
```
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config import Settings
from sandbox.repo_config import CONFIG_PATH, SandboxRepoConfig


class RepoConfigInvalid(Exception):
    """The file exists but cannot be used; `errors` lists each problem on its own line."""

    def __init__(self, errors: list[str], path: str = CONFIG_PATH) -> None:
        self.path = path
        self.errors = errors
        super().__init__(f"{path} is invalid:\n" + "\n".join(f"- {e}" for e in errors))

    @property
    def text(self) -> str:
        return "\n".join(f"- {e}" for e in self.errors)


class ModelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str | None = Field(None, min_length=1)
    discriminator: str | None = Field(None, min_length=1)
    agitator: str | None = Field(None, min_length=1)


class AutonomyConfig(BaseModel):
    """Scheduled scans (bot/jobs/scheduler.py): when, and how many open bot PRs the repository tolerates."""

    model_config = ConfigDict(extra="forbid")

    schedule: str = Field(min_length=1)  # cron, five fields, UTC: "0 3 * * 1" is Mondays at 03:00
    max_open_prs: int = Field(3, ge=1, le=20)
    label: str = Field("aura-sicd-autonomy", min_length=1, max_length=50)  # put on each PR a scan opens

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError("must be a cron expression of five fields, e.g. \"0 3 * * 1\" (Mondays 03:00 UTC)")
        return v


class RepoConfig(SandboxRepoConfig):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, min_length=1, max_length=50)
    max_iterations: int | None = Field(None, ge=1, le=50)
    models: ModelChoice = Field(default_factory=ModelChoice)
    allow_paths: list[str] | None = None
    deny_paths: list[str] | None = None
    draft_pr_on_failure: bool | None = None
    autonomy: AutonomyConfig | None = None
    post_setup_output: bool | None = None  # false: a failed setup's output is not posted on GitHub (default: its end)

    def apply(self, settings: Settings) -> Settings:
        """`settings` with this repository's choices on top (the sandbox keys are read by the sandbox).

        Paths only ever get stricter: `deny_paths` adds to the operator's deny list (`AURA_DENY_PATHS`),
        never replaces it, and the policy checks denials before `allow_paths`, so an allowed glob cannot
        re-open a denied path."""
        deny = None
        if self.deny_paths is not None:
            deny = list(dict.fromkeys([*settings.deny_paths, *self.deny_paths]))
        update = {
            "trigger_label": self.label,
            "max_iterations": self.max_iterations,
            "generator_model": self.models.generator,
            "discriminator_model": self.models.discriminator,
            "agitator_model": self.models.agitator,
            "allow_paths": self.allow_paths,
            "deny_paths": deny,
            "draft_pr_on_failure": self.draft_pr_on_failure,
        }
        return settings.model_copy(update={k: v for k, v in update.items() if v is not None})


def parse_repo_config(text: str | None) -> RepoConfig:
    """Validate the file's text; None or an empty file gives the defaults."""
    if text is None:
        return RepoConfig()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RepoConfigInvalid([f"not valid YAML: {exc}"]) from exc
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigInvalid([f"the file must be a mapping of keys to values, not a {type(data).__name__}"])
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        raise RepoConfigInvalid([_describe(err) for err in exc.errors()]) from exc


def load_repo_config(repo_dir: Path) -> RepoConfig:
    """Read `.github/aura-sicd.yml` from a checkout; an absent file gives the defaults."""
    path = Path(repo_dir) / CONFIG_PATH
    if not path.is_file():
        return RepoConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RepoConfigInvalid([f"not UTF-8 text: {exc}"]) from exc
    return parse_repo_config(text)


def _describe(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        nested = {"models": ModelChoice, "autonomy": AutonomyConfig}.get(str(err["loc"][0]), ModelChoice)
        known = ", ".join(sorted(RepoConfig.model_fields)) if len(err["loc"]) == 1 else ", ".join(sorted(nested.model_fields))
        return f"{where}: unknown key (known keys: {known})"
    return f"{where}: {err['msg']} (got {err.get('input')!r})"
