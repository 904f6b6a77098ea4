"""Configuration of the API: defaults, then a file, then ``AUDIOFP_*`` environment.

The factory takes an explicit dict last, so tests and embedding code can set
anything. ``AUDIOFP_API_CONFIG`` names an optional TOML or JSON file whose keys
are the names below (case-insensitive).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from audiofp.config import Settings
from audiofp.errors import ParameterError
from audiofp.moderation import ModerationSettings

#: Every key the service reads, with its default and type.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "",
    "MIGRATE": True,
    "MAX_UPLOAD_BYTES": 200 * 1024 * 1024,
    "MAX_AUDIO_SECONDS": 3600.0,
    "DECODE_TIMEOUT_SECONDS": 60.0,
    "BLOCK_CONFIDENCE": ModerationSettings.block_confidence,
    "REVIEW_CONFIDENCE": ModerationSettings.review_confidence,
    "MIN_USE_CONFIDENCE": ModerationSettings.min_use_confidence,
    "RATE_LIMIT_PER_MINUTE": 1200,
    "RATE_LIMIT_BURST": 120,
}


def _coerce(key: str, value: Any) -> Any:
    default = DEFAULTS[key]
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ParameterError(f"configuration {key} must be a {type(default).__name__}, got {value!r}") from None


def _read_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ParameterError(f"cannot read configuration file {path}: {exc}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"configuration file {path} is not valid: {exc}") from None
    return {str(k).upper(): v for k, v in data.items()}


def load_config(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The effective configuration: defaults < file < environment < ``overrides``."""
    env = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    layers: list[dict[str, Any]] = []
    if env.get("AUDIOFP_API_CONFIG"):
        layers.append(_read_file(env["AUDIOFP_API_CONFIG"]))
    layers.append({k: env[f"AUDIOFP_{k}"] for k in DEFAULTS if env.get(f"AUDIOFP_{k}")})
    layers.append({str(k).upper(): v for k, v in (overrides or {}).items()})
    for layer in layers:
        for key, value in layer.items():
            config[key] = _coerce(key, value) if key in DEFAULTS else value
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = Settings.from_env(env).resolved_database_url
    return config


def moderation_settings(config: dict[str, Any]) -> ModerationSettings:
    """Domain settings from the API configuration."""
    engine = Settings.from_env(
        {},
        database_url=config["DATABASE_URL"],
        max_input_bytes=int(config["MAX_UPLOAD_BYTES"]),
        max_duration_seconds=float(config["MAX_AUDIO_SECONDS"]),
        decode_timeout_seconds=float(config["DECODE_TIMEOUT_SECONDS"]),
    )
    return ModerationSettings(
        block_confidence=float(config["BLOCK_CONFIDENCE"]),
        review_confidence=float(config["REVIEW_CONFIDENCE"]),
        min_use_confidence=float(config["MIN_USE_CONFIDENCE"]),
        engine=engine,
    )
