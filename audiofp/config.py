"""The one set of runtime settings, read once: defaults < file < ``AUDIOFP_*`` < overrides.

Every knob an operator can turn lives in :class:`Settings`, grouped in
sections (input limits, matching, moderation, server, index). The CLI, the API and
the benchmark all build the same object with :meth:`Settings.load`, so a limit
means the same thing whichever door the audio came in by. Each field of each
section is named uniquely, and its environment variable is ``AUDIOFP_`` plus
the field name in capitals (``max_upload_bytes`` -> ``AUDIOFP_MAX_UPLOAD_BYTES``);
a TOML or JSON file named by ``AUDIOFP_CONFIG_FILE`` uses the same names.

Settings are a frozen value handed to whatever needs them, never read from the
environment deep inside the code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .engine.matching import MatchSettings
from .errors import OutOfRangeError, ParameterError

#: Names operators used before the settings were unified; still read, mapped to their new field.
DEPRECATED_NAMES = {"max_input_bytes": "max_upload_bytes", "max_duration_seconds": "max_audio_seconds"}

#: Variables that name a settings file (TOML, or JSON by its suffix); the first set wins.
CONFIG_FILE_VARIABLES = ("AUDIOFP_CONFIG_FILE", "AUDIOFP_API_CONFIG")


def default_data_dir() -> Path:
    """Where the embedded SQLite store lives unless told otherwise."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "audiofp"


@dataclass(frozen=True)
class Limits:
    """What one input may cost, the same for the CLI and the API.

    Attributes
    ----------
    max_upload_bytes : int
        Largest file accepted; larger ones are refused before decoding (the
        API refuses the request body itself, with 413).
    max_audio_seconds : float
        Longest audio accepted; decoding stops with an error past it.
    decode_timeout_seconds : float
        Wall-clock budget for checking one input (decoding, fingerprinting and
        matching), so a hostile file cannot hold a worker.
    max_audio_tracks : int
        Most audio tracks a file may have; every one is checked, so a file
        with more is refused rather than checked in part.
    check_seconds_per_audio_minute : float
        Added to ``decode_timeout_seconds`` for each minute of audio decoded:
        a long upload needs longer to check, while a file that decodes to
        nothing earns no more time (the default lets an hour-long upload take
        up to seven minutes, a check at 10x realtime).
    """

    max_upload_bytes: int = 200 * 1024 * 1024
    max_audio_seconds: float = 3600.0
    decode_timeout_seconds: float = 60.0
    max_audio_tracks: int = 8
    check_seconds_per_audio_minute: float = 6.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_audio_seconds", "decode_timeout_seconds", "max_audio_tracks"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.check_seconds_per_audio_minute >= 0:
            raise ParameterError(
                f"check_seconds_per_audio_minute must be >= 0, got {self.check_seconds_per_audio_minute!r}")


#: Largest ``max_upload_future_seconds`` (ten years): a clock skew, not a calendar.
MAX_FUTURE_SECONDS = 10 * 365.25 * 86400


@dataclass(frozen=True)
class ModerationSettings:
    """Thresholds that turn matches into a recommended action.

    Attributes
    ----------
    block_confidence : float
        A reused sound linked to removed content with match confidence at or
        above this recommends ``block``.
    review_confidence : float
        ... at or above this (but below ``block_confidence``) recommends ``review``.
    min_use_confidence : float
        Matches below this confidence are not recorded as uses nor reported.
    earliest_upload_year : int
        Uploads dated before January 1 of this year (UTC) are refused.
    max_upload_future_seconds : float
        Uploads dated more than this far ahead of the service's clock are refused.
    """

    block_confidence: float = 0.999
    review_confidence: float = 0.9
    min_use_confidence: float = 0.5
    earliest_upload_year: int = 2000
    max_upload_future_seconds: float = 86400.0

    def __post_init__(self) -> None:
        for name in ("block_confidence", "review_confidence", "min_use_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ParameterError(f"{name} must be within [0, 1], got {value}")
        if self.review_confidence > self.block_confidence:
            raise ParameterError("review_confidence must not exceed block_confidence")
        if not 1 <= self.earliest_upload_year <= 9999:
            raise ParameterError(f"earliest_upload_year must be within 1..9999, got {self.earliest_upload_year}")
        if not 0.0 <= self.max_upload_future_seconds <= MAX_FUTURE_SECONDS:
            raise ParameterError(f"max_upload_future_seconds must be within [0, {MAX_FUTURE_SECONDS:.0f}], "
                                 f"got {self.max_upload_future_seconds}")

    def check_upload_time(self, uploaded_at: datetime, now: datetime) -> None:
        """Refuse an upload time before ``earliest_upload_year`` or too far after ``now``.

        Raises
        ------
        OutOfRangeError
            If ``uploaded_at`` (an aware datetime) lies outside the window.
        """
        # Differences of aware datetimes never overflow, whatever their offsets
        # (converting 9999-12-31T23:59-14:00 to UTC would).
        earliest = datetime(self.earliest_upload_year, 1, 1, tzinfo=timezone.utc)
        if uploaded_at < earliest:
            raise OutOfRangeError(f"uploaded_at {uploaded_at.isoformat()} is before {earliest.isoformat()}, "
                                  "the earliest upload time accepted (EARLIEST_UPLOAD_YEAR)")
        ahead = (uploaded_at - now).total_seconds()
        if ahead > self.max_upload_future_seconds:
            raise OutOfRangeError(f"uploaded_at {uploaded_at.isoformat()} is {ahead:.0f} s ahead of the service's "
                                  f"clock; at most {self.max_upload_future_seconds:.0f} s is accepted "
                                  "(MAX_UPLOAD_FUTURE_SECONDS)")

    def action(self, linked_confidences: list[float]) -> str:
        """``block``, ``review`` or ``allow`` given the confidences of the
        reused sounds that are linked to removed content."""
        best = max(linked_confidences, default=0.0)
        if linked_confidences and best >= self.block_confidence:
            return "block"
        if linked_confidences and best >= self.review_confidence:
            return "review"
        return "allow"


@dataclass(frozen=True)
class ServerSettings:
    """Knobs of the HTTP service.

    Attributes
    ----------
    migrate : bool
        Bring the schema to the newest revision when a worker opens the store.
    rate_limit_per_minute : int
        Requests per minute per API key and worker process (0 turns the limit off).
    rate_limit_burst : int
        Requests a key may send at once before the per-minute rate applies.
    """

    migrate: bool = True
    rate_limit_per_minute: int = 1200
    rate_limit_burst: int = 120

    def __post_init__(self) -> None:
        if self.rate_limit_per_minute < 0 or self.rate_limit_burst < 0:
            raise ParameterError("rate limits must be >= 0")


@dataclass(frozen=True)
class IndexSettings:
    """When the index snapshot workers look hashes up in is rebuilt.

    Attributes
    ----------
    index_refresh_postings : int
        A worker (or ``audiofp ingest``) builds a new snapshot by itself once
        this many postings are not in the current one (the first snapshot:
        once the store holds this many). About 190,000 postings make an hour
        of audio, so the default is about 10 hours. 0 leaves every build to
        ``audiofp index snapshot``.
    """

    index_refresh_postings: int = 2_000_000

    def __post_init__(self) -> None:
        if self.index_refresh_postings < 0:
            raise ParameterError("index_refresh_postings must be >= 0")


#: The sections of :class:`Settings`, by attribute name.
SECTIONS: dict[str, type] = {
    "limits": Limits,
    "matching": MatchSettings,
    "moderation": ModerationSettings,
    "server": ServerSettings,
    "index": IndexSettings,
}


#: Settings outside the sections: where the store and its snapshots live.
TOP_LEVEL = ("database_url", "data_dir", "index_dir")


@dataclass(frozen=True)
class Settings:
    """Everything an operator can configure.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL; empty means a SQLite file under ``data_dir``.
    data_dir : str
        Folder of the embedded store; empty means :func:`default_data_dir`.
    index_dir : str
        Folder of the index snapshots this machine's workers map
        (``audiofp index snapshot`` builds one); empty means ``index`` under
        the data folder, and ``off`` indexes the store in each process's memory (small stores only).
    limits, matching, moderation, server, index
        The sections (see each class).
    """

    database_url: str = ""
    data_dir: str = ""
    index_dir: str = ""
    limits: Limits = field(default_factory=Limits)
    matching: MatchSettings = field(default_factory=MatchSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    index: IndexSettings = field(default_factory=IndexSettings)

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

    @property
    def resolved_index_dir(self) -> Path | None:
        """The snapshot folder actually used, or None when snapshots are turned off."""
        if self.index_dir.strip().lower() == "off":
            return None
        return Path(self.index_dir) if self.index_dir else self.resolved_data_dir / "index"

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        """Defaults, then the settings file, then ``AUDIOFP_*`` variables, then ``overrides``.

        Parameters
        ----------
        overrides : mapping, optional
            Flat names (any case) to values, applied last.
        environ : mapping, optional
            The environment to read; ``os.environ`` by default.

        Raises
        ------
        ParameterError
            On an unknown name in the file or ``overrides``, a value of the wrong
            type, or a value out of range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable in CONFIG_FILE_VARIABLES:
            if env.get(variable):
                values.update(_read_file(env[variable]))
                break
        for name in _flat_fields():
            for spelling in [name, *(old for old, new in DEPRECATED_NAMES.items() if new == name)]:
                raw = env.get(f"AUDIOFP_{spelling.upper()}")
                if raw:
                    values[name] = raw
                    break
        for key, value in (overrides or {}).items():
            values[_canonical(str(key))] = value
        return cls.from_flat(values)

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> "Settings":
        """Build settings from flat field names (as :meth:`flat` returns them)."""
        known = _flat_fields()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ParameterError(f"unknown setting(s): {', '.join(unknown)}")
        sections: dict[str, Any] = {}
        for section, section_type in SECTIONS.items():
            given = {f.name: _coerce(f.name, values[f.name], f.type) for f in fields(section_type) if f.name in values}
            sections[section] = section_type(**given)
        top = {name: str(values[name]) for name in TOP_LEVEL if name in values}
        return cls(**top, **sections)

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name (the names the environment and files use)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in TOP_LEVEL}
        for section in SECTIONS:
            out.update(dataclasses.asdict(getattr(self, section)))
        return out

    def with_changes(self, **changes: Any) -> "Settings":
        """A copy with some flat-named settings changed (tests and embedding code)."""
        return Settings.from_flat({**self.flat(), **{_canonical(k): v for k, v in changes.items()}})


def _flat_fields() -> dict[str, str]:
    """Flat name -> annotated type name, for the top level and every section."""
    out = {name: "str" for name in TOP_LEVEL}
    for section_type in SECTIONS.values():
        for f in fields(section_type):
            if f.name in out:  # pragma: no cover - a programming error caught by the tests
                raise AssertionError(f"setting {f.name!r} is defined twice")
            out[f.name] = str(f.type)
    return out


def _canonical(name: str) -> str:
    key = name.lower().removeprefix("audiofp_")
    return DEPRECATED_NAMES.get(key, key)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ParameterError(f"setting {name} must be a {kind}, got {value!r}") from None


def _read_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ParameterError(f"cannot read settings file {path}: {exc}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"settings file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"settings file {path} must hold a table of settings")
    return {_canonical(str(k)): v for k, v in data.items()}


def settings_table() -> list[tuple[str, Any, str]]:
    """(variable, default, section) for every setting: the README's table is checked against it."""
    defaults = Settings().flat()
    rows = [(f"AUDIOFP_{name.upper()}", "", "store") for name in TOP_LEVEL]
    for section, section_type in SECTIONS.items():
        rows += [(f"AUDIOFP_{f.name.upper()}", defaults[f.name], section) for f in fields(section_type)]
    return rows


__all__ = [
    "IndexSettings", "Limits", "MatchSettings", "ModerationSettings", "SECTIONS", "ServerSettings", "Settings",
    "default_data_dir", "settings_table",
]
