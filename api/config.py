"""The API's settings: the one ``audiofp.config.Settings``, plus Flask's own keys.

``create_app(config)`` takes a dict: keys that name a setting (any case, for
instance ``MAX_UPLOAD_BYTES``) override the defaults, the settings file and
the ``AUDIOFP_*`` environment; any other key is Flask configuration (``TESTING``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audiofp.config import Settings

#: Every setting name, in the lower case the settings object uses.
SETTING_NAMES = frozenset(Settings().flat())


def split_config(config: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config`` split into (setting overrides, Flask configuration)."""
    settings: dict[str, Any] = {}
    flask: dict[str, Any] = {}
    for key, value in (config or {}).items():
        (settings if str(key).lower() in SETTING_NAMES else flask)[str(key)] = value
    return settings, flask


def load_settings(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The effective settings: defaults < file < environment < the setting keys of ``config``."""
    overrides, _ = split_config(config)
    return Settings.load(overrides, environ)
