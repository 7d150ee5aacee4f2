"""Options every command that reads settings shares: --config FILE and --set KEY=VALUE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from codestill.config import Settings, load_settings
from codestill.errors import ConfigError

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (TOML); default ./codestill.toml when present.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override one setting, e.g. --set llm.timeout_s=30 (repeatable).")]


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """["llm.timeout_s=30"] -> {"llm.timeout_s": "30"}; pydantic converts the strings."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set llm.timeout_s=30")
        out[key.strip()] = value
    return out


def settings_from(config: Path | None, sets: list[str] | None, **flags: Any) -> Settings:
    """Settings with command flags (dotted keys; None = not given) over --set over env over file."""
    return load_settings(config, {**parse_sets(sets), **flags})
