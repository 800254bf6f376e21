"""Settings: one TOML file, every key optional, every value checked.

A bad value is a usage error that names its key (`ConfigError`), so the command line
can exit with code 2 before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import zoneinfo
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.catalog import CATALOG

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
class Range:
    """The values a number of the config may take: `low` to `high`, whole numbers unless `whole`
    is False; `low` itself excluded when `low_open`."""

    low: int | float
    high: int | float
    whole: bool = True
    low_open: bool = False

    def holds(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            return False
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def __str__(self) -> str:
        if self.low_open:
            return f"a number above {self.low} and at most {self.high}"
        return f"{'a whole number' if self.whole else 'a number'} from {self.low} to {self.high}"


WINDOW_DAYS = Range(1, 3660)  # days back from as_of (ten years; as_of is 2000-01-01 or later)
DAYS_AFTER = Range(1, 366)  # days after an event
COUNT = Range(1, 1_000_000_000)
FACTOR = Range(1, 1000, whole=False, low_open=True)

# Every number of the config, by TOML key (a `*` stands for any text): the range it may take.
# Beyond these the job's date arithmetic (DuckDB INTEGER days and intervals), its threads or its
# memory could not follow, or the value would mean nothing. tests/test_cli.py checks each key.
NUMBER_RANGES = {
    "refund_policy.refund_window_days": DAYS_AFTER,
    "validation.max_bad_row_fraction": Range(0, 1, whole=False),
    "duckdb.threads": Range(1, 256),
    "signals.*_window_days": WINDOW_DAYS,
    "signals.*_baseline_days": WINDOW_DAYS,
    "signals.*_max_days*": DAYS_AFTER,
    "signals.*_min_*": COUNT,
    "signals.*_max_entities": COUNT,
    "signals.*_factor": Range(0, 1000, whole=False, low_open=True),
    "signals.weights.*": Range(0, 1, whole=False, low_open=True),
    "gates.volume_max_factor": FACTOR,
    "gates.volume_trailing_nights": DAYS_AFTER,
    "gates.volume_min_nights": DAYS_AFTER,
    "gates.freshness_max_age_hours.*": Range(1, 366 * 24),
    "notify.smtp_port": Range(1, 65535),
    "notify.timeout_seconds": Range(1, 60),
    "decisions.hold_min_score": Range(0, 100, whole=False),
}


def number_range(key: str) -> Range | None:
    """The declared range of the number at `key`, or None if `key` is not a number's."""
    return next((limits for pattern, limits in NUMBER_RANGES.items() if fnmatchcase(key, pattern)), None)


def _number(key: str, value):
    """`value` if it is in the range declared for `key` (as a float where the range is not whole)."""
    limits = number_range(key)
    if limits is None:
        raise LookupError(f"no range declared for config key '{key}' in NUMBER_RANGES")
    if not limits.holds(value):
        raise ConfigError(f"config key '{key}' must be {limits}, got {value!r}")
    return value if limits.whole else float(value)


# Abuse signals and how much each weighs in a case's score (0 < weight <= 1), and each signal's
# own thresholds: all declared in the headers of sql/signals/<CODE>.sql (jobs/catalog.py).
DEFAULT_SIGNAL_WEIGHTS = CATALOG.signal_weights()

if TYPE_CHECKING:

    @dataclass(frozen=True)
    class SignalSettings:
        """What a type checker sees of the dataclass below, whose fields come from the SQL headers."""

        disabled: tuple[str, ...] = ()
        weights: dict[str, float] = field(default_factory=dict)

        def __init__(self, **values: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...
else:
    SignalSettings = make_dataclass(
        "SignalSettings",
        [(name, type(default), field(default=default)) for name, default in CATALOG.signal_settings().items()]
        + [
            ("disabled", tuple, field(default=())),
            ("weights", dict, field(default_factory=lambda: dict(DEFAULT_SIGNAL_WEIGHTS))),
        ],
        frozen=True,
    )
    SignalSettings.__doc__ = "Thresholds and windows of the abuse signals (SPEC section 5 defaults), TOML [signals]."


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


NOTIFY_WHEN = ("always", "problems")


@dataclass(frozen=True)
class NotifySettings:
    """Where the night's outcome is sent (jobs/outputs/notify.py, docs/operations.md), TOML [notify].

    Secrets are never here: `webhook_url_env` and `smtp_password_env` name the environment
    variables holding the webhook URL (its token is part of it) and the SMTP password.
    """

    when: str = "always"  # or "problems": only a night that failed or came with warnings
    webhook_url_env: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password_env: str | None = None
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    timeout_seconds: int = 10  # per channel: a slow webhook or mail server cannot hold the night up


@dataclass(frozen=True)
class Settings:
    """Everything a run may be tuned with; the defaults are SPEC's."""

    billing_time_zone: str = "Asia/Shanghai"
    refund_window_days: int = 5
    disqualifying_suspension_reasons: tuple[str, ...] = ("content_violation", "illegal_activity")
    max_bad_row_fraction: float = 0.01
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
    notify: NotifySettings = field(default_factory=NotifySettings)
    hold_min_score: float = 60.0  # a pending refund of an open case scoring this or more is held (docs/decisions.md)

    def duckdb_config(self, db_path: Path | None) -> dict[str, Any]:
        """DuckDB's settings for a connection of a run (its own, the report's, the exports'):
        `[duckdb]` of the config; DuckDB spills next to the warehouse (`<warehouse>.tmp`) unless
        `temp_directory` says where (DuckDB instances share a temp folder safely)."""
        config: dict[str, Any] = {
            "memory_limit": self.duckdb_memory_limit,
            "preserve_insertion_order": self.duckdb_preserve_insertion_order,
        }
        if self.duckdb_threads:
            config["threads"] = self.duckdb_threads
        if self.duckdb_temp_directory:
            config["temp_directory"] = self.duckdb_temp_directory
        elif db_path is not None:
            config["temp_directory"] = f"{db_path}.tmp"
        return config

    def fingerprint(self) -> str:
        """A short hash of the settings that shape a run's results, recorded with each run
        (where its outcome is sent is not one)."""
        shaping = {name: value for name, value in asdict(self).items() if name != "notify"}
        text = json.dumps(shaping, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Keys that no longer tune anything, accepted so that an older config still runs (README lists them).
RETIRED_KEYS = {("validation", "batch_rows")}  # validation runs in SQL since issue #12: no batches

# TOML layout: [section] key  ->  Settings field
_KEYS = {
    ("billing", "time_zone"): "billing_time_zone",
    ("refund_policy", "refund_window_days"): "refund_window_days",
    ("refund_policy", "disqualifying_suspension_reasons"): "disqualifying_suspension_reasons",
    ("validation", "max_bad_row_fraction"): "max_bad_row_fraction",
    ("duckdb", "threads"): "duckdb_threads",
    ("duckdb", "memory_limit"): "duckdb_memory_limit",
    ("duckdb", "temp_directory"): "duckdb_temp_directory",
    ("duckdb", "preserve_insertion_order"): "duckdb_preserve_insertion_order",
    ("outputs", "report"): "write_report",
    ("outputs", "exports"): "write_exports",
    ("privacy", "mask_shared_report"): "mask_shared_report",
    ("privacy", "mask_csv_exports"): "mask_csv_exports",
    ("decisions", "hold_min_score"): "hold_min_score",
}
_BOOLEANS = (
    "write_report",
    "write_exports",
    "mask_shared_report",
    "mask_csv_exports",
    "duckdb_preserve_insertion_order",
)


def config_keys() -> list[str]:
    """Every key a config file may set, dotted (`signals.weights.SERIAL_REFUNDER`)."""
    signals = [f"signals.{item.name}" for item in fields(SignalSettings) if item.name != "weights"]
    gates = [f"gates.{item.name}" for item in fields(GateSettings) if item.name != "freshness_max_age_hours"]
    return (
        [".".join(key) for key in _KEYS]
        + signals
        + [f"signals.weights.{code}" for code in DEFAULT_SIGNAL_WEIGHTS]
        + gates
        + [f"gates.freshness_max_age_hours.{stem}" for stem in DEFAULT_FRESHNESS_MAX_AGE_HOURS]
        + [f"notify.{item.name}" for item in fields(NotifySettings)]
    )


def load_settings(path: Path | None) -> Settings:
    """Read `path` (or use the defaults when None) and check every value."""
    if path is None:
        return Settings()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not UTF-8 (byte {error.object[error.start]:#04x} at offset {error.start})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config key '{section}' must be a [section]")
        if section == "signals":
            values["signals"] = _signal_settings(table)
            continue
        if section == "gates":
            values["gates"] = _gate_settings(table)
            continue
        if section == "notify":
            values["notify"] = _notify_settings(table)
            continue
        for key, value in table.items():
            name = _KEYS.get((section, key))
            if (section, key) in RETIRED_KEYS:
                continue
            if name is None:
                raise ConfigError(f"unknown config key '{section}.{key}'")
            values[name] = _checked(f"{section}.{key}", name, value)
    return Settings(**values)


def _signal_settings(table: dict) -> SignalSettings:
    """[signals]: each key a SignalSettings field, checked against its default's type."""
    defaults = SignalSettings()
    known = {item.name for item in fields(SignalSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = f"signals.{key}"
        if key not in known:
            raise ConfigError(f"unknown config key '{name}'")
        if key == "disabled":
            if not isinstance(value, list) or any(code not in DEFAULT_SIGNAL_WEIGHTS for code in value):
                raise ConfigError(
                    f"config key '{name}' must be a list drawn from {list(DEFAULT_SIGNAL_WEIGHTS)}, got {value!r}"
                )
            values[key] = tuple(value)
        elif key == "weights":
            values[key] = dict(defaults.weights) | _weights(name, value)
        else:
            values[key] = _number(name, value)
    return replace(defaults, **values)


def _weights(name: str, table) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"config key '{name}' must be a table of signal code = weight")
    for code in table:
        if code not in DEFAULT_SIGNAL_WEIGHTS:
            raise ConfigError(f"unknown config key '{name}.{code}'")
    return {code: _number(f"{name}.{code}", weight) for code, weight in table.items()}


def _gate_settings(table: dict) -> GateSettings:
    """[gates]: each key a GateSettings field; freshness_max_age_hours a table by export stem."""
    values = {}
    for key, value in table.items():
        name = f"gates.{key}"
        if key == "on_failure":
            if value not in GATE_ON_FAILURE:
                raise ConfigError(f'config key \'{name}\' must be "warn" or "fail", got {value!r}')
        elif key == "freshness_max_age_hours":
            value = DEFAULT_FRESHNESS_MAX_AGE_HOURS | _max_ages(name, value)
        elif number_range(name) is not None:
            value = _number(name, value)
        else:
            raise ConfigError(f"unknown config key '{name}'")
        values[key] = value
    gates = replace(GateSettings(), **values)
    if gates.volume_min_nights > gates.volume_trailing_nights:
        raise ConfigError(
            f"config key 'gates.volume_min_nights' must be at most gates.volume_trailing_nights "
            f"({gates.volume_trailing_nights}), got {gates.volume_min_nights!r}"
        )
    return gates


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRETS = {"webhook_url": "webhook_url_env", "smtp_password": "smtp_password_env"}


def _notify_settings(table: dict) -> NotifySettings:
    """[notify]: each key a NotifySettings field; a secret itself is refused, its variable's name taken."""
    values = {}
    for key, value in table.items():
        name = f"notify.{key}"
        if key in _SECRETS:
            raise ConfigError(
                f"config key '{name}' is not taken: secrets come from the environment; "
                f"give the variable's name as notify.{_SECRETS[key]}"
            )
        if key == "when":
            if value not in NOTIFY_WHEN:
                raise ConfigError(f'config key \'{name}\' must be "always" or "problems", got {value!r}')
        elif key.endswith("_env"):
            if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
                raise ConfigError(f"config key '{name}' must name an environment variable, got {value!r}")
        elif key == "smtp_starttls":
            if not isinstance(value, bool):
                raise ConfigError(f"config key '{name}' must be true or false, got {value!r}")
        elif key == "mail_to":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(item, str) and "@" in item for item in value)
            ):
                raise ConfigError(f"config key '{name}' must be a list of mail addresses, got {value!r}")
            value = tuple(value)
        elif number_range(name) is not None:
            value = _number(name, value)
        elif key in {item.name for item in fields(NotifySettings)}:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"config key '{name}' must be a non-empty string, got {value!r}")
        else:
            raise ConfigError(f"unknown config key '{name}'")
        values[key] = value
    notify = replace(NotifySettings(), **values)
    if notify.smtp_host and not (notify.mail_from and notify.mail_to):
        raise ConfigError("config key 'notify.smtp_host' needs notify.mail_from and notify.mail_to")
    return notify


def _max_ages(name: str, table) -> dict:
    """Hours per export stem: a whole number >= 1, or false for not checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"config key '{name}' must be a table of export = hours")
    for stem in table:
        if stem not in DEFAULT_FRESHNESS_MAX_AGE_HOURS:
            raise ConfigError(f"unknown config key '{name}.{stem}'")
    return {stem: None if hours is False else _number(f"{name}.{stem}", hours) for stem, hours in table.items()}


def _checked(key: str, name: str, value):
    """Return `value` in the form Settings wants, or raise ConfigError naming `key`."""
    if name == "billing_time_zone":
        if not isinstance(value, str) or value not in zoneinfo.available_timezones():
            raise ConfigError(f"config key '{key}' must be an IANA time zone such as 'Asia/Shanghai', got {value!r}")
        return value
    if number_range(key) is not None:
        return _number(key, value)
    if name == "disqualifying_suspension_reasons":
        if not isinstance(value, list) or any(reason not in SUSPENSION_REASONS for reason in value):
            raise ConfigError(f"config key '{key}' must be a list drawn from {list(SUSPENSION_REASONS)}, got {value!r}")
        return tuple(value)
    if name in _BOOLEANS:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config key '{key}' must be a non-empty string, got {value!r}")
    return value
