"""Settings: one place for every knob. Read from the environment (and `.env`), documented in the README."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import UnknownEditFormat
from sandbox.config import SandboxSettings

# the generator's edit formats, one module each in bot/edit_formats/ (its registry must name the same)
EDIT_FORMATS = ("json-search-replace", "search-replace", "whole-file", "json-line-edits")


def known_edit_format(name: str) -> str:
    """`name` when it is one of EDIT_FORMATS; else UnknownEditFormat (a ValueError) naming the known ones."""
    if name not in EDIT_FORMATS:
        raise UnknownEditFormat(f"unknown edit format {name!r}: the known formats are {', '.join(sorted(EDIT_FORMATS))}")
    return name

# What a proposal may never change by default: what verifies it (CI workflows, composite actions, the
# bot's own config that defines the checks, CODEOWNERS that decides who must review) and secrets.
# docs/github-app.md "Security and failure handling" says why each is here.
DEFAULT_DENY = [
    ".github/workflows/**", ".github/actions/**", "**/action.yml", "**/action.yaml",
    ".github/aura-sicd.yml",
    "CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS",
    "**/*.pem", "**/.env*", "secrets/**",
]
ROLES = ("generator", "discriminator", "agitator")
Provider = Literal["ollama", "openai"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AURA_", env_file=".env", extra="ignore")

    # --- models: Ollama's API, or an OpenAI-compatible server (bot/llm/providers/) ---
    llm_provider: Provider = "ollama"
    generator_provider: Provider | None = None  # per-role overrides of llm_provider
    discriminator_provider: Provider | None = None
    agitator_provider: Provider | None = None
    openai_base_url: str = "http://localhost:1234/v1"  # LM Studio's; llama-server, vLLM: http://host:8000/v1
    openai_api_key: str | None = None
    openai_json_dialect: Literal["auto", "json_schema", "json_object"] = "auto"  # structured output's form
    ollama_host: str = Field(
        "http://localhost:11434", validation_alias=AliasChoices("OLLAMA_HOST", "AURA_OLLAMA_HOST")
    )
    generator_model: str = "qwen2.5-coder:7b"
    discriminator_model: str = "qwen2.5:7b"
    agitator_model: str = "qwen2.5:7b"
    # extra candidates per iteration (ensemble); "model" or "model@temperature"
    ensemble_size: int = Field(1, ge=1, le=8)
    ensemble_models: list[str] = Field(default_factory=list)
    generator_temperature: float = 0.2
    edit_format: str = "json-search-replace"  # how the generator writes changes (bot/edit_formats/)
    # per model: {"glob of model names": "format"}; beats edit_format and the family defaults
    edit_formats: dict[str, str] = Field(default_factory=dict)
    edit_format_choices: list[str] = Field(default_factory=list)  # several: a bandit per repository picks one
    # token budgets: the context window sent as num_ctx, per role
    generator_num_ctx: int = Field(16384, ge=1024)
    discriminator_num_ctx: int = Field(8192, ge=1024)
    agitator_num_ctx: int = Field(8192, ge=1024)
    max_output_tokens: int = Field(4096, ge=256)  # reserved for the reply inside num_ctx
    ollama_timeout_s: float = Field(600.0, gt=0)
    ollama_retries: int = Field(4, ge=1)

    # --- the cycle ---
    max_iterations: int = Field(5, ge=1, le=50)
    approval_threshold: float = Field(0.6, ge=0.0, le=1.0)  # rubric score needed for approval
    require_all_checks: bool = True
    baseline: bool = True  # judge attempts against the checks on the unmodified base (bot/cycle/baseline.py)
    # the affected tests first only when the base's full check takes at least this long (docs/test-impact.md)
    test_impact_min_suite_s: float = Field(30.0, ge=0.0)

    # --- learning across runs (docs/learning.md) ---
    generator_models: list[str] = Field(default_factory=list)  # several: a bandit per repository picks one
    human_feedback_weight: float = Field(3.0, ge=0.0)  # a merged/closed PR counts as this many rewards
    memory_limit: int = Field(8, ge=0)  # guidance-memory entries given to the generator
    pattern_examples: int = Field(2, ge=0)  # approved similar changes given to the generator as examples
    embedding_model: str | None = None  # Ollama embedding model for pattern similarity; lexical if unset
    retention_days: int | None = Field(None, ge=1)  # `aura-sicd learning retention` deletes older records

    # --- policy ---
    allow_paths: list[str] = Field(default_factory=lambda: ["**"])
    deny_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_DENY))
    max_lines_added: int = Field(800, ge=1)
    max_files_changed: int = Field(20, ge=1)

    # --- storage ---
    data_dir: Path = Path("./data")
    store_url: str | None = None  # default: SQLite in the data directory

    # --- sandbox (its own settings, AURA_SANDBOX_*, so the package stands alone) ---
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    # --- GitHub App ---
    github_app_id: int | None = None
    github_private_key: str | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: str | None = None
    github_api_url: str = "https://api.github.com"
    github_retry_budget_s: float = Field(600.0, ge=0.0)  # how long a job may wait out GitHub/git faults in process
    publish_attempts: int = Field(5, ge=1)  # durable attempts of each publishing step before the job gives up
    publish_retry_interval_s: float = Field(60.0, ge=0.0)  # pause before the 2nd attempt, doubling after
    github_git_url: str | None = None  # base of clone/push URLs (`<url>/<owner>/<name>.git`); default: from the API URL
    trigger_label: str = "aura-sicd"
    draft_pr_on_failure: bool = True
    public_url: str = "http://localhost:3000"  # links in comments (dashboard)
    host: str = "0.0.0.0"
    port: int = 3000
    queue_concurrency: int = Field(2, ge=1)
    # jobs one installation may run at once, across every process (bot/jobs/fairness.py); None: one less
    # than queue_concurrency, at least 1
    installation_concurrency: int | None = Field(None, ge=1)
    # --- durable jobs (DBOS; docs/github-app.md "Jobs") ---
    dbos_url: str | None = None  # DBOS system database; default: SQLite in the data directory; Postgres for several machines
    dbos_executor_id: str | None = None  # stable, unique per process when several share one database
    takeover_poll_s: float = Field(5.0, gt=0)  # how often each process looks for jobs of processes that died
    review_coalesce_s: float = Field(5.0, ge=0.0)  # review comments arriving within this window make one iteration
    serve_runs_jobs: bool = True  # false: `serve` only enqueues and `aura-sicd worker` processes work the jobs
    serve_admits: bool = True  # false: `serve` only records and acknowledges; `aura-sicd worker` admits and enqueues

    # --- admin API ---
    admin_token: str | None = None
    metrics_token: str | None = None  # when set, /metrics wants `Authorization: Bearer <token>`
    enable_training: bool = Field(False, validation_alias=AliasChoices("ENABLE_TRAINING", "AURA_ENABLE_TRAINING"))
    enable_autonomy: bool = Field(False, validation_alias=AliasChoices("ENABLE_AUTONOMY", "AURA_ENABLE_AUTONOMY"))
    autonomy_tick_s: float = Field(60.0, gt=0)  # how often scheduled scans (repository config `autonomy`) are looked at
    safe_mode: bool = Field(True, validation_alias=AliasChoices("SAFE_MODE", "AURA_SAFE_MODE"))

    @field_validator("ollama_host", "openai_base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("edit_format")
    @classmethod
    def _known_edit_format(cls, v: str) -> str:
        return known_edit_format(v)

    @field_validator("edit_formats")
    @classmethod
    def _known_edit_formats(cls, v: dict[str, str]) -> dict[str, str]:
        return {pattern: known_edit_format(name) for pattern, name in v.items()}

    @field_validator("edit_format_choices")
    @classmethod
    def _known_edit_format_choices(cls, v: list[str]) -> list[str]:
        return [known_edit_format(name) for name in v]

    def provider_for(self, role: str) -> Provider:
        return getattr(self, f"{role}_provider") or self.llm_provider

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'aura.db').resolve()}"

    @property
    def dbos_database_url(self) -> str:
        return self.dbos_url or f"sqlite:///{(self.data_dir / 'dbos.sqlite').resolve()}"

    def clone_url(self, repo: str) -> str:
        """Where git clones and pushes `owner/name`: the configured host only, never a URL from a payload."""
        base = self.github_git_url
        if base is None:
            parts = urlsplit(self.github_api_url.rstrip("/"))
            host = parts.netloc.removeprefix("api.")  # api.github.com, api.<tenant>.ghe.com
            path = parts.path.removesuffix("/api/v3")  # GitHub Enterprise Server
            base = urlunsplit((parts.scheme, host, path, "", ""))
        return f"{base.rstrip('/')}/{repo}.git"

    @property
    def proposals_dir(self) -> Path:
        return self.data_dir / "proposals"
