"""The README documents every setting and opens with the two commands."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from bot.config import Settings
from sandbox.config import SandboxSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def env_names(model: type, prefix: str) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, SandboxSettings):
            continue  # nested settings: listed under their own prefix
        alias = field.validation_alias
        names.append(alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented():
    names = env_names(Settings, "AURA_") + env_names(SandboxSettings, "AURA_SANDBOX_")
    missing = [n for n in names if f"`{n}`" not in README]
    assert not missing, f"settings missing from the README: {missing}"


def test_readme_opens_with_run_and_test_commands():
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("scripts/run") and block[1].startswith("scripts/test")
    root = Path(__file__).resolve().parents[1]
    assert (root / "scripts" / "run").stat().st_mode & 0o111
    assert "./scripts/test" in (root / ".ci" / "run").read_text()
