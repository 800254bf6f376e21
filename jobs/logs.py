"""What a run shows while it works: a live progress display, plain log lines or JSON Lines.

The pipeline logs on the `refund_recon` logger with an `event` field (`stage_started`,
`stage_finished`, `gate_warning`, ...); the command line adds `run_finished` and `run_failed`.
One handler, chosen by `--log-format`, renders them:

- `auto`: a spinner and a ✓ line per stage when the stream is a terminal, else as `plain`;
- `plain`: `2026-11-26T02:00:01Z INFO refund_recon: validate done in 2.3s (...)` lines;
- `json`: one JSON object per line, with every field of the record.

Streams: `plain` and the progress display write to standard error (standard output keeps the
summary); `json` writes to standard output, which then holds JSON Lines only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import IO

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

FORMATS = ("auto", "plain", "json")
log = logging.getLogger("refund_recon")

# The attributes every LogRecord has; anything else on a record came in through `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Fields every record logged inside `bound_fields(...)` carries (a run's `run_id`).
_bound: ContextVar[dict] = ContextVar("refund_recon_bound_fields", default={})


def configure_logging(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """Install the handler for `log_format` on the `refund_recon` logger, replacing ours from before.

    `stream` defaults to standard output for `json`, standard error otherwise (read when called,
    so a redirected sys.stdout or sys.stderr is honoured).
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    if stream is None:
        stream = sys.stdout if log_format == "json" else sys.stderr
    if log_format == "json":
        handler = _stream_handler(stream, JsonFormatter())
    elif log_format == "auto" and stream.isatty():
        handler = ProgressHandler(Console(file=stream, force_terminal=True, highlight=False))
    else:
        handler = _stream_handler(stream, PlainFormatter())
    handler.log_format = log_format
    handler.addFilter(_add_bound_fields)
    _remove_handler()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


@contextmanager
def logging_to(log_format: str, stream: IO[str] | None = None) -> Iterator[logging.Handler]:
    """Logging configured for the block; after it the handler is closed (progress stopped) and
    removed, and the logger's level is restored."""
    level = log.level
    handler = configure_logging(log_format, stream)
    try:
        yield handler
    finally:
        _remove_handler()
        log.setLevel(level)


@contextmanager
def bound_fields(**fields) -> Iterator[None]:
    """Give every record logged inside the block these fields (unless it sets them itself)."""
    token = _bound.set(_bound.get() | fields)
    try:
        yield
    finally:
        _bound.reset(token)


def _add_bound_fields(record: logging.LogRecord) -> bool:
    for name, value in _bound.get().items():
        if not hasattr(record, name):
            setattr(record, name, value)
    return True


def current_format() -> str | None:
    """The format of the handler installed by configure_logging, or None if there is none."""
    return next((handler.log_format for handler in log.handlers if hasattr(handler, "log_format")), None)


def run_failed(message: str, exit_code: int = 1, **fields) -> None:
    """Report a failed run: a `run_failed` event (with `fields`), or the one line
    `refund-recon: <message>` on standard error where no handler is installed."""
    if current_format() is None:
        print(f"refund-recon: {message}", file=sys.stderr)
    else:
        log.error(message, extra={"event": "run_failed", "exit_code": exit_code} | fields)


def _remove_handler() -> None:
    for handler in [handler for handler in log.handlers if hasattr(handler, "log_format")]:
        log.removeHandler(handler)
        handler.close()


def _stream_handler(stream: IO[str], formatter: logging.Formatter) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    return handler


def utc_timestamp(record: logging.LogRecord, timespec: str = "seconds") -> str:
    """The record's time in UTC, ISO 8601 with a `Z`."""
    moment = datetime.fromtimestamp(record.created, timezone.utc)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def extra_fields(record: logging.LogRecord) -> dict:
    """The fields a record was given through `extra`."""
    return {name: value for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES}


class PlainFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <logger>: <message>`; a failed run is the one line `refund-recon: <message>`."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "event", None) == "run_failed":
            return f"refund-recon: {record.getMessage()}"
        return f"{utc_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    """One JSON object: ts, level, logger, message and every `extra` field (money as strings)."""

    def format(self, record: logging.LogRecord) -> str:
        body = {"ts": utc_timestamp(record, "milliseconds"), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        return json.dumps(body | extra_fields(record), default=_json_value, ensure_ascii=False)


def _json_value(value):
    """JSON for what json cannot encode: Decimal as a fixed-point string, never a float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)  # Path and the like


class ProgressHandler(logging.Handler):
    """A spinner per running stage, replaced by `✓ <stage> <seconds>s (<row counts>)` when it ends.

    Other records print above the spinners (warnings in yellow); a failed run marks its running
    stages ✗ and ends with `refund-recon: <message>`.
    """

    def __init__(self, console: Console):
        super().__init__(logging.INFO)
        self.console = console
        self.running: dict[str, tuple[Spinner, float]] = {}
        self.live: Live | None = None

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == "stage_started":
            self._start(record.stage)
        elif event == "stage_finished":
            self._finish(record.stage, Text.assemble(("✓ ", "green"), _stage_text(record)))
        elif event == "stage_failed":
            self._finish(record.stage, Text.assemble(("✗ ", "red"), record.getMessage()))
        elif event == "run_failed":
            for stage, (_, started) in list(self.running.items()):
                self._finish(stage, Text.assemble(("✗ ", "red"), f"{stage} failed after {time.monotonic() - started:.1f}s"))
            self.console.print(Text(f"refund-recon: {record.getMessage()}", style="bold red"), soft_wrap=True)
        else:
            self.console.print(_record_text(record), soft_wrap=True)

    def _start(self, stage: str) -> None:
        self.running[stage] = (Spinner("dots", Text(f"{stage} ...")), time.monotonic())
        if self.live is None:
            self.live = Live(console=self.console, get_renderable=self._spinners, transient=True,
                             refresh_per_second=10, redirect_stdout=False, redirect_stderr=False)
            self.live.start(refresh=True)

    def _finish(self, stage: str, line: Text) -> None:
        self.running.pop(stage, None)
        if not self.running:
            self._stop()
        self.console.print(line)

    def _spinners(self) -> Group:
        running = tuple(self.running.items())  # called from Live's refresh thread too
        now = time.monotonic()
        for stage, (spinner, started) in running:
            spinner.update(text=Text(f"{stage} {now - started:.1f}s"))
        return Group(*(spinner for _, (spinner, _) in running))

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def close(self) -> None:
        self._stop()
        super().close()


def _stage_text(record: logging.LogRecord) -> str:
    """`validate 2.3s (loaded 1,234, quarantined 5)`."""
    counts = ", ".join(f"{name} {count:,}" for name, count in getattr(record, "rows", {}).items())
    return f"{record.stage} {record.seconds:.1f}s" + (f" ({counts})" if counts else "")


def _record_text(record: logging.LogRecord) -> Text:
    if record.levelno >= logging.ERROR:
        return Text(f"✗ {record.getMessage()}", style="red")
    if record.levelno >= logging.WARNING:
        return Text(f"⚠ {record.getMessage()}", style="yellow")
    return Text(record.getMessage(), style="dim")
