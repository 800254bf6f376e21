"""Settings: one TOML file, every key optional, every value checked.

A bad value is a usage error that names its key (`ConfigError`), so the command line
can exit with code 2 before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import zoneinfo
from dataclasses import asdict, dataclass, field, fields, replace
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


# Abuse signals and how much each weighs in a case's score (0 < weight <= 1; see jobs/abuse.py).
DEFAULT_SIGNAL_WEIGHTS = {
    "SERIAL_REFUNDER": 0.5,
    "REFUND_CYCLE": 0.6,
    "PROMO_REFUNDS": 0.4,
    "REFUND_BEFORE_SUSPENSION": 0.8,
    "LINKED_ENTITIES": 0.7,
    "LINKED_TO_SUSPENDED": 0.6,
    "USAGE_SHIFT": 0.5,
    "REFUND_VELOCITY": 0.3,
}


@dataclass(frozen=True)
class SignalSettings:
    """Thresholds and windows of the abuse signals (SPEC section 5 defaults), TOML [signals]."""

    serial_refunder_min_refunds: int = 3
    serial_refunder_window_days: int = 90
    refund_cycle_min_cycles: int = 2
    refund_cycle_window_days: int = 180
    refund_cycle_max_days_to_repurchase: int = 7
    promo_refunds_min_orders: int = 2
    promo_refunds_window_days: int = 180
    refund_before_suspension_max_days: int = 7
    linked_entities_window_days: int = 180
    linked_fingerprint_max_entities: int = 20
    linked_to_suspended_window_days: int = 180
    usage_shift_min_minutes: int = 500
    usage_shift_window_days: int = 180
    refund_velocity_window_days: int = 7
    refund_velocity_baseline_days: int = 28
    refund_velocity_min_refunds: int = 20
    refund_velocity_factor: float = 3.0
    disabled: tuple[str, ...] = ()
    weights: dict = field(default_factory=lambda: dict(DEFAULT_SIGNAL_WEIGHTS))


# Freshness gate: how old, in hours before the end of as_of, each export's newest record may be
# (None: not checked). docs/gates.md says why.
DEFAULT_FRESHNESS_MAX_AGE_HOURS = {"purchases": 48, "usage": 24, "refunds": 72, "account_status": None}
GATE_ON_FAILURE = ("warn", "fail")


@dataclass(frozen=True)
class GateSettings:
    """Freshness and volume gates on the night's exports (docs/gates.md), TOML [gates]."""

    on_failure: str = "warn"
    freshness_max_age_hours: dict = field(default_factory=lambda: dict(DEFAULT_FRESHNESS_MAX_AGE_HOURS))
    volume_max_factor: float = 3.0
    volume_trailing_nights: int = 14
    volume_min_nights: int = 5


@dataclass(frozen=True)
class Settings:
    """Everything a run may be tuned with; the defaults are SPEC's."""

    billing_time_zone: str = "Asia/Shanghai"
    refund_window_days: int = 5
    disqualifying_suspension_reasons: tuple[str, ...] = ("content_violation", "illegal_activity")
    max_bad_row_fraction: float = 0.01
    validation_batch_rows: int = 250_000
    duckdb_threads: int | None = None
    duckdb_memory_limit: str = "1GiB"
    duckdb_temp_directory: str | None = None
    duckdb_preserve_insertion_order: bool = True
    write_report: bool = True
    write_exports: bool = True
    mask_shared_report: bool = True
    mask_csv_exports: bool = False
    signals: SignalSettings = field(default_factory=SignalSettings)
    gates: GateSettings = field(default_factory=GateSettings)

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
    ("duckdb", "preserve_insertion_order"): "duckdb_preserve_insertion_order",
    ("outputs", "report"): "write_report",
    ("outputs", "exports"): "write_exports",
    ("privacy", "mask_shared_report"): "mask_shared_report",
    ("privacy", "mask_csv_exports"): "mask_csv_exports",
}
_BOOLEANS = ("write_report", "write_exports", "mask_shared_report", "mask_csv_exports",
             "duckdb_preserve_insertion_order")


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
        if section == "signals":
            values["signals"] = _signal_settings(table)
            continue
        if section == "gates":
            values["gates"] = _gate_settings(table)
            continue
        for key, value in table.items():
            name = _KEYS.get((section, key))
            if name is None:
                raise ConfigError(f"unknown config key '{section}.{key}'")
            values[name] = _checked(f"{section}.{key}", name, value)
    return Settings(**values)


def _signal_settings(table: dict) -> SignalSettings:
    """[signals]: each key a SignalSettings field, checked against its default's type."""
    defaults = SignalSettings()
    known = {item.name for item in fields(SignalSettings)}
    values = {}
    for key, value in table.items():
        name = f"signals.{key}"
        if key not in known:
            raise ConfigError(f"unknown config key '{name}'")
        if key == "disabled":
            if not isinstance(value, list) or any(code not in DEFAULT_SIGNAL_WEIGHTS for code in value):
                raise ConfigError(f"config key '{name}' must be a list drawn from {list(DEFAULT_SIGNAL_WEIGHTS)}, got {value!r}")
            values[key] = tuple(value)
        elif key == "weights":
            values[key] = dict(defaults.weights) | _weights(name, value)
        elif isinstance(getattr(defaults, key), float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"config key '{name}' must be a number > 0, got {value!r}")
            values[key] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"config key '{name}' must be a whole number >= 1, got {value!r}")
            values[key] = value
    return replace(defaults, **values)


def _weights(name: str, table) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"config key '{name}' must be a table of signal code = weight")
    for code, weight in table.items():
        if code not in DEFAULT_SIGNAL_WEIGHTS:
            raise ConfigError(f"unknown config key '{name}.{code}'")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
            raise ConfigError(f"config key '{name}.{code}' must be a number in (0, 1], got {weight!r}")
    return {code: float(weight) for code, weight in table.items()}


def _gate_settings(table: dict) -> GateSettings:
    """[gates]: each key a GateSettings field; freshness_max_age_hours a table by export stem."""
    values = {}
    for key, value in table.items():
        name = f"gates.{key}"
        if key == "on_failure":
            if value not in GATE_ON_FAILURE:
                raise ConfigError(f"config key '{name}' must be \"warn\" or \"fail\", got {value!r}")
        elif key == "freshness_max_age_hours":
            value = DEFAULT_FRESHNESS_MAX_AGE_HOURS | _max_ages(name, value)
        elif key == "volume_max_factor":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 1:
                raise ConfigError(f"config key '{name}' must be a number > 1, got {value!r}")
            value = float(value)
        elif key in ("volume_trailing_nights", "volume_min_nights"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"config key '{name}' must be a whole number >= 1, got {value!r}")
        else:
            raise ConfigError(f"unknown config key '{name}'")
        values[key] = value
    gates = replace(GateSettings(), **values)
    if gates.volume_min_nights > gates.volume_trailing_nights:
        raise ConfigError(f"config key 'gates.volume_min_nights' must be at most gates.volume_trailing_nights "
                          f"({gates.volume_trailing_nights}), got {gates.volume_min_nights!r}")
    return gates


def _max_ages(name: str, table) -> dict:
    """Hours per export stem: a whole number >= 1, or false for not checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"config key '{name}' must be a table of export = hours")
    for stem, hours in table.items():
        if stem not in DEFAULT_FRESHNESS_MAX_AGE_HOURS:
            raise ConfigError(f"unknown config key '{name}.{stem}'")
        if hours is not False and (isinstance(hours, bool) or not isinstance(hours, int) or hours < 1):
            raise ConfigError(f"config key '{name}.{stem}' must be a whole number of hours >= 1, or false "
                              f"(not checked), got {hours!r}")
    return {stem: None if hours is False else hours for stem, hours in table.items()}


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
    if name in _BOOLEANS:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if name == "max_bad_row_fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"config key '{key}' must be a number from 0 to 1, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config key '{key}' must be a non-empty string, got {value!r}")
    return value
