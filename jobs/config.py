"""Settings: one TOML file, every key optional, every value checked.

A bad value is a usage error that names its key (`ConfigError`), so the command line
can exit with code 2 before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import zoneinfo
from dataclasses import asdict, dataclass
from pathlib import Path

SUSPENSION_REASONS = (
    "content_violation",
    "illegal_activity",
    "overdue_payment",
    "security_risk",
    "user_request",
    "other",
)


class ConfigError(ValueError):
    """A configuration key has a value the job cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a run may be tuned with; the defaults are SPEC's."""

    billing_time_zone: str = "Asia/Shanghai"
    refund_window_days: int = 5
    disqualifying_suspension_reasons: tuple[str, ...] = ("content_violation", "illegal_activity")
    max_bad_row_fraction: float = 0.01
    validation_batch_rows: int = 250_000
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    duckdb_temp_directory: str | None = None

    def fingerprint(self) -> str:
        """A short hash of the effective settings, recorded with each run."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# TOML layout: [section] key  ->  Settings field
_KEYS = {
    ("billing", "time_zone"): "billing_time_zone",
    ("refund_policy", "refund_window_days"): "refund_window_days",
    ("refund_policy", "disqualifying_suspension_reasons"): "disqualifying_suspension_reasons",
    ("validation", "max_bad_row_fraction"): "max_bad_row_fraction",
    ("validation", "batch_rows"): "validation_batch_rows",
    ("duckdb", "threads"): "duckdb_threads",
    ("duckdb", "memory_limit"): "duckdb_memory_limit",
    ("duckdb", "temp_directory"): "duckdb_temp_directory",
}


def load_settings(path: Path | None) -> Settings:
    """Read `path` (or use the defaults when None) and check every value."""
    if path is None:
        return Settings()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    values = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config key '{section}' must be a [section]")
        for key, value in table.items():
            name = _KEYS.get((section, key))
            if name is None:
                raise ConfigError(f"unknown config key '{section}.{key}'")
            values[name] = _checked(f"{section}.{key}", name, value)
    return Settings(**values)


def _checked(key: str, name: str, value):
    """Return `value` in the form Settings wants, or raise ConfigError naming `key`."""
    if name == "billing_time_zone":
        if not isinstance(value, str) or value not in zoneinfo.available_timezones():
            raise ConfigError(f"config key '{key}' must be an IANA time zone such as 'Asia/Shanghai', got {value!r}")
        return value
    if name in ("refund_window_days", "validation_batch_rows", "duckdb_threads"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"config key '{key}' must be a whole number >= 1, got {value!r}")
        return value
    if name == "disqualifying_suspension_reasons":
        if not isinstance(value, list) or any(reason not in SUSPENSION_REASONS for reason in value):
            raise ConfigError(f"config key '{key}' must be a list drawn from {list(SUSPENSION_REASONS)}, got {value!r}")
        return tuple(value)
    if name == "max_bad_row_fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"config key '{key}' must be a number from 0 to 1, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config key '{key}' must be a non-empty string, got {value!r}")
    return value
