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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.filesize import decimal as decimal_size
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.text import Text

FORMATS = ("auto", "plain", "json")
log = logging.getLogger("refund_recon")

# The attributes every LogRecord has; anything else on a record came in through `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Fields every record logged inside `bound_fields(...)` carries (a run's `run_id`).
_bound: ContextVar[dict | None] = ContextVar("refund_recon_bound_fields", default=None)


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
    handler.log_format = log_format  # type: ignore[attr-defined]  # read back by the tests and summary
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
    """Give every record logged inside the block these fields (unless it sets them itself); an
    error leaving the block carries them (`fields_of`), for the failure reported outside it."""
    token = _bound.set((_bound.get() or {}) | fields)
    try:
        yield
    except BaseException as error:
        if not hasattr(error, "bound_fields"):
            error.bound_fields = _bound.get()  # type: ignore[attr-defined]  # the run's fields, for run_failed
        raise
    finally:
        _bound.reset(token)


def fields_of(error: BaseException) -> dict:
    """The bound fields (a run's `run_id`) in force where `error` was raised, if any."""
    return dict(getattr(error, "bound_fields", {}))


def _add_bound_fields(record: logging.LogRecord) -> bool:
    for name, value in (_bound.get() or {}).items():
        if not hasattr(record, name):
            setattr(record, name, value)
    return True


def current_format() -> str | None:
    """The format of the handler installed by configure_logging, or None if there is none."""
    return next((handler.log_format for handler in log.handlers if hasattr(handler, "log_format")), None)


def run_failed(message: str, exit_code: int = 1, **fields) -> None:
    """Report a failed run: a `run_failed` event (with `fields`), or the line
    `refund-recon: <message>` on standard error where no handler is installed (then the
    failure's details, if any: a rejected night's first quarantined rows)."""
    if current_format() is None:
        print("\n".join(failure_lines(message, fields)), file=sys.stderr)
    else:
        log.error(message, extra={"event": "run_failed", "exit_code": exit_code} | fields)


def failure_lines(message: str, fields: dict) -> list[str]:
    """`refund-recon: <message>`, then `  <file> line <n> [<column>]: <why>` for the first
    quarantined rows of each file over the limit, when the failure is a rejected night."""
    return [f"refund-recon: {message}"] + [
        f"  {item['source']} line {row['line']} [{row['column']}]: {row['message']}"
        for item in fields.get("files_over_limit", ())
        for row in item["first_rows"]
    ]


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
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def extra_fields(record: logging.LogRecord) -> dict:
    """The fields a record was given through `extra`."""
    return {name: value for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES}


class PlainFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <logger>: <message>`; a failed run is the one line `refund-recon: <message>`."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "event", None) == "run_failed":
            return "\n".join(failure_lines(record.getMessage(), extra_fields(record)))
        return f"{utc_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    """One JSON object: ts, level, logger, message and every `extra` field (money as strings)."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": utc_timestamp(record, "milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(body | extra_fields(record), default=json_value, ensure_ascii=False)


def json_value(value):
    """JSON for what json cannot encode: Decimal as a fixed-point string, never a float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)  # Path and the like


class ProgressHandler(logging.Handler):
    """A spinner per running stage, with a bar where the stage knows its total (`stage_progress`),
    replaced by `✓ <stage> <seconds>s (<row counts>)` when it ends.

    Other records print above the spinners (warnings in yellow); a failed run marks its running
    stages ✗ and ends with `refund-recon: <message>`.
    """

    def __init__(self, console: Console):
        super().__init__(logging.INFO)
        self.console = console
        self.running: dict[str, tuple[TaskID, float]] = {}
        self.progress: Progress | None = None

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == "stage_started":
            self._start(_field(record, "stage"))
        elif event == "stage_finished":
            self._finish(_field(record, "stage"), Text.assemble(("✓ ", "green"), _stage_text(record)))
        elif event == "stage_failed":
            self._finish(_field(record, "stage"), Text.assemble(("✗ ", "red"), record.getMessage()))
        elif event == "run_failed":
            for stage, (_, started) in list(self.running.items()):
                self._finish(
                    stage, Text.assemble(("✗ ", "red"), f"{stage} failed after {time.monotonic() - started:.1f}s")
                )
            first, *details = failure_lines(record.getMessage(), extra_fields(record))
            self.console.print(Text(first, style="bold red"), soft_wrap=True)
            for line in details:
                self.console.print(Text(line, style="red"), soft_wrap=True)
        else:
            self.console.print(_record_text(record), soft_wrap=True)

    def advance(self, completed: float, total: float, detail: str) -> None:
        """Move the bar of the stage started last."""
        if self.progress is not None and self.running:
            task, _ = list(self.running.values())[-1]
            self.progress.update(task, completed=completed, total=total, detail=detail)

    def _start(self, stage: str) -> None:
        if self.progress is None:
            self.progress = Progress(
                SpinnerColumn("dots"),
                TextColumn("{task.description}"),
                _Seconds(),
                _BarWhereTotalKnown(bar_width=30),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
                transient=True,
                refresh_per_second=10,
            )
            self.progress.start()
        self.running[stage] = (self.progress.add_task(stage, total=None, detail=""), time.monotonic())

    def _finish(self, stage: str, line: Text) -> None:
        task, _ = self.running.pop(stage, (None, 0.0))
        if task is not None and self.progress is not None:
            self.progress.remove_task(task)
        if not self.running:
            self._stop()
        self.console.print(line)

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        self._stop()
        super().close()


class _Seconds(ProgressColumn):
    """The stage's time so far, `12.3s`."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.elapsed or 0.0:.1f}s")


class _BarWhereTotalKnown(BarColumn):
    """A bar for a stage that said its total; nothing for one that did not."""

    def render(self, task: Task):
        return super().render(task) if task.total is not None else Text("")


def _progress_handler() -> ProgressHandler | None:
    return next((handler for handler in log.handlers if isinstance(handler, ProgressHandler)), None)


def stage_progress(completed: float, total: float, detail: str = "") -> None:
    """How far the running stage is, for the progress display on a terminal; plain lines and
    JSON logs do not show it."""
    handler = _progress_handler()
    if handler is not None:
        handler.advance(completed, total, detail)


def step_progress(done: int, total: int, step: str) -> None:
    """The runner finished `done` of its `total` SQL steps, the last `step` (a batch of one step
    draws no bar: it would say nothing)."""
    if total > 1:
        stage_progress(done, total, f"step {done} of {total} ({step})")


class LoadMeter:
    """The loading bar: bytes read of the night's files, rows per second, the time left.

    A file counts whole once loaded. While one loads, the share of it read is DuckDB's progress
    through the query running on `con` (polled a few times a second, kept below the whole file
    and never going back): an estimate, as fine as DuckDB reports. Rows are counted per file done.
    Without a progress display (off a terminal) nothing is polled and DuckDB is left as it is.
    """

    POLL_SECONDS = 0.2

    def __init__(self, con, sizes: list[int]):
        self.con, self.total = con, sum(sizes)
        self.bytes_done = self.rows_done = 0
        self.started = time.monotonic()
        self.shown = _progress_handler() is not None

    @contextmanager
    def reading(self, size_bytes: int) -> Iterator[None]:
        """Load one file of `size_bytes` inside the block."""
        if not self.shown:
            yield
            self.bytes_done += size_bytes
            return
        self.con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
        stop = threading.Event()
        poller = threading.Thread(target=self._poll, args=(size_bytes, stop), daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
            self.con.execute("RESET enable_progress_bar; RESET enable_progress_bar_print")
        self.bytes_done += size_bytes
        self._show(self.bytes_done)

    def rows_read(self, rows: int) -> None:
        self.rows_done += rows
        self._show(self.bytes_done)

    def _poll(self, size_bytes: int, stop: threading.Event) -> None:
        share = 0.0
        while not stop.wait(self.POLL_SECONDS):
            percent = self.con.query_progress()
            share = max(share, min(percent, 99.0) / 100)
            self._show(self.bytes_done + size_bytes * share)

    def _show(self, bytes_read: float) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        left = (self.total - bytes_read) * elapsed / bytes_read if bytes_read else None
        detail = (
            f"{decimal_size(int(bytes_read))} of {decimal_size(self.total)}"
            f" · {self.rows_done / elapsed:,.0f} rows/s"
            f" · ETA {'?' if left is None else _clock(left)}"
        )
        stage_progress(bytes_read, self.total, detail)


def _clock(seconds: float) -> str:
    """`1:02:03`, `2:03`."""
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


def _stage_text(record: logging.LogRecord) -> str:
    """`validate 2.3s (loaded 1,234, quarantined 5)`."""
    counts = ", ".join(f"{name} {count:,}" for name, count in getattr(record, "rows", {}).items())
    return f"{_field(record, 'stage')} {_field(record, 'seconds'):.1f}s" + (f" ({counts})" if counts else "")


def _field(record: logging.LogRecord, name: str) -> Any:
    """A field a stage event carries (`extra=` of the log call)."""
    return record.__dict__[name]


def _record_text(record: logging.LogRecord) -> Text:
    if record.levelno >= logging.ERROR:
        return Text(f"✗ {record.getMessage()}", style="red")
    if record.levelno >= logging.WARNING:
        return Text(f"⚠ {record.getMessage()}", style="yellow")
    return Text(record.getMessage(), style="dim")
