"""Runtime settings, read once from the environment (``AUDIOFP_*``).

Settings are a frozen value handed to whatever needs them, never read from the
environment deep inside the code, so that tests and the API factory can build
their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path


def default_data_dir() -> Path:
    """Where the embedded SQLite store lives unless told otherwise."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "audiofp"


@dataclass(frozen=True)
class Settings:
    """Operator-facing knobs of the service.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL; empty means a SQLite file under ``data_dir``.
    data_dir : str
        Folder of the embedded store.
    max_input_bytes : int
        Largest file accepted for decoding.
    max_duration_seconds : float
        Longest audio accepted; decoding stops (with an error) past it.
    decode_timeout_seconds : float
        Wall-clock budget for decoding one input; a hostile file cannot hang a worker.
    """

    database_url: str = ""
    data_dir: str = ""
    """Empty means ``default_data_dir()``, resolved when the settings are read."""
    max_input_bytes: int = 512 * 1024 * 1024
    max_duration_seconds: float = 3 * 3600.0
    decode_timeout_seconds: float = 120.0

    @property
    def resolved_database_url(self) -> str:
        """The URL actually used: ``database_url`` or the SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'audiofp.sqlite'}"

    @property
    def resolved_data_dir(self) -> Path:
        """The data folder actually used."""
        return Path(self.data_dir) if self.data_dir else default_data_dir()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Defaults, then ``AUDIOFP_<FIELD>`` variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"AUDIOFP_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            default = getattr(cls, f.name)
            values[f.name] = type(default)(raw)
        return replace(cls(**values), **overrides)  # type: ignore[arg-type]
