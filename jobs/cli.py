"""Command line: `refund-recon run` and `refund-recon validate` (SPEC section 7).

Exit codes: 0 success (flags found is success); 1 input rejected or run failed, nothing
written, or a file the command was to write could not be; 2 usage error (bad option, date or
config value); 130 interrupted (Ctrl-C). Every failure is one line naming what is wrong
(docs/operations.md, "Errors and exit codes").
"""

from __future__ import annotations

import functools
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from click.core import ParameterSource

from jobs import __version__, logs
from jobs.config import ConfigError, Settings, load_settings
from jobs.engine.steps import StepError
from jobs.errors import cannot_write
from jobs.options import config_option, db_option
from jobs.outputs import notify
from jobs.outputs.report import ReportError
from jobs.outputs.summary import summary_fields, summary_lines
from jobs.pipeline import RunFailed, default_as_of, run
from jobs.stages.gates import GateFailed
from jobs.stages.loading import StructuralError
from jobs.stages.publish import PublishError
from jobs.stages.reconciliation import InvariantFailed
from jobs.stages.run_result import RunResult
from jobs.stages.validation import TooManyBadRows
from jobs.tools.backtest import backtest_command
from jobs.tools.eligibility import eligibility_command
from jobs.tools.lists import lists
from jobs.tools.review import review

INPUT_PROBLEMS = (
    StructuralError,
    TooManyBadRows,
    GateFailed,
    PublishError,
    InvariantFailed,
    ReportError,
    RunFailed,
    StepError,
)
# The nights a run can compute with: none before this, none more than this many days after
# today in billing time (a typo such as 9999-12-31 is caught, and no date arithmetic overflows).
FIRST_NIGHT = date(2000, 1, 1)
MAX_DAYS_AHEAD = 366
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report it
_interrupt_received = threading.Event()


class Night(click.ParamType):
    """A business date, YYYY-MM-DD, that exists in the calendar (2026-02-30 does not)."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.fail(f"{value!r} is not a date of the form YYYY-MM-DD", param, ctx)
        try:
            return date.fromisoformat(value)
        except ValueError as error:
            self.fail(f"{value!r} is not a date ({error})", param, ctx)


class _Main(click.Group):
    """The command group: Ctrl-C in any command ends it with one line and exit code 130."""

    def invoke(self, ctx):
        with _noting_interrupts():
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt:
                _fail("interrupted", INTERRUPTED_EXIT_CODE)
            except Exception:
                if _interrupt_received.is_set():
                    _fail("interrupted", INTERRUPTED_EXIT_CODE)
                raise


@contextmanager
def _noting_interrupts() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt as usual, and is noted: DuckDB turns it into a RuntimeError
    inside a query, which must still end the command as an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum, frame):
        _interrupt_received.set()
        signal.default_int_handler(signum, frame)

    _interrupt_received.clear()
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="refund-recon")
def main() -> None:
    """Check every TRTC monthly-package refund against the refund policy.

    Reads one night's exports (purchases, usage, refunds, account_status as CSV,
    CSV.gz or Parquet), quarantines bad rows, flags every refund that broke a rule
    and writes the verdicts to a DuckDB warehouse.
    """


main.add_command(review)
main.add_command(lists)
main.add_command(backtest_command)
main.add_command(eligibility_command)


def _common_options(command):
    command = config_option()(command)
    command = click.option(
        "--as-of",
        type=Night(),
        help="Business date YYYY-MM-DD the run sees up to, in billing time "
        "(default: yesterday in the billing time zone).",
    )(command)
    command = click.option(
        "--input",
        "input_dir",
        type=click.Path(file_okay=False),  # as typed: on Spark it may be a URI (s3a://...)
        help="Folder holding the night's exports (a full snapshot or a delta). "
        "`run` without it replays the night from the warehouse.",
    )(command)
    return command


def log_format_option(command):
    """`--log-format`, with the command run under that logging (jobs/logs.py, docs/operations-logging.md).

    An unexpected error ends the run as any failure does: one line (or a `run_failed` event), exit 1.
    """

    @functools.wraps(command)
    def with_logging(*args, log_format: str, **kwargs):
        with logs.logging_to(log_format):
            try:
                return command(*args, **kwargs)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt as interrupt:
                _fail("interrupted", INTERRUPTED_EXIT_CODE, **logs.fields_of(interrupt))
            except Exception as error:
                _fail(_failure_message(error), **logs.fields_of(error))

    return click.option(
        "--log-format",
        type=click.Choice(logs.FORMATS),
        default="auto",
        show_default=True,
        help="Progress on a terminal / plain log lines otherwise (auto), plain lines, "
        "or JSON Lines on standard output (json).",
    )(with_logging)


@main.command("run")
@_common_options
@log_format_option
@db_option("The DuckDB warehouse to write (--engine duckdb).")
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where the night runs: DuckDB on this machine, or Spark (Parquet exports in, Parquet outputs to --out).",
)
@click.option("--out", help="--engine spark: the outputs folder, <out>/<table>/as_of=<D>/ (a path, hdfs://, s3a://).")
@click.option("--spark-master", help="--engine spark: the master URL (local[2], yarn, spark://HOST:7077).")
@click.option("--spark-remote", help="--engine spark: a Spark Connect server, sc://HOST:PORT.")
def run_command(
    input_dir: str | None,
    as_of,
    config_path: Path | None,
    db_path: Path,
    engine: str,
    out: str | None,
    spark_master: str | None,
    spark_remote: str | None,
) -> None:
    """Load, validate, flag and publish one night into the warehouse (or, on Spark, into --out).

    Without --input, replay the night from the records the warehouse stored (an exact rerun).
    """
    settings = _settings(config_path)
    night = _as_of(as_of, settings)
    if engine == "spark":
        _spark_run(settings, input_dir, night, out, spark_master, spark_remote)
        return
    for option, value in (("--out", out), ("--spark-master", spark_master), ("--spark-remote", spark_remote)):
        if value:
            raise click.UsageError(f"{option} is for --engine spark")
    result = _run(settings, _folder(input_dir), night, db_path)
    _finish(result, "succeeded", [*summary_lines(result), f"  warehouse: {db_path}"], warehouse=str(db_path))
    notify.night_finished(settings.notify, result, str(db_path))


def _spark_run(
    settings: Settings, input_path: str | None, as_of: date, out: str | None, master: str | None, remote: str | None
) -> None:
    """`run --engine spark`: the night on Spark, its outputs under --out (docs/spark.md)."""
    if click.get_current_context().get_parameter_source("db_path") is not ParameterSource.DEFAULT:
        raise click.UsageError("--db is the DuckDB engine's warehouse; --engine spark writes to --out")
    if input_path is None or out is None:
        raise click.UsageError("--engine spark needs --input (the night's Parquet exports) and --out")
    if master and remote:
        raise click.UsageError("give --spark-master or --spark-remote, not both")
    try:
        from jobs.spark_pipeline import run_on_spark, spark_session
    except ImportError as error:
        _fail(f"--engine spark needs PySpark ({error.name} is missing): pip install 'refund-recon[spark]'")
    spark = spark_session(master, remote, settings)
    try:
        result = _night_or_fail(settings, as_of, lambda: run_on_spark(settings, spark, input_path, as_of, out))
        _finish(result, "succeeded", [*summary_lines(result), f"  outputs: {out}"], outputs=out)
        notify.night_finished(settings.notify, result, out)
    finally:
        if remote:  # a Spark Connect session is this command's own: closed, its client threads end
            spark.stop()


def _folder(input_dir: str | None) -> Path | None:
    return None if input_dir is None else Path(input_dir)


@main.command("backfill")
@click.option("--from", "first_night", required=True, type=Night(), help="The first business date to run, YYYY-MM-DD.")
@click.option(
    "--to", "last_night", required=True, type=Night(), help="The last business date to run, YYYY-MM-DD (included)."
)
@click.option(
    "--input",
    "input_pattern",
    help="Each night's export folder, with {as_of} standing for its date, e.g. 'exports/{as_of}' "
    "(a folder without {as_of} serves every night). Without it, every night is replayed "
    "from the warehouse.",
)
@db_option("The DuckDB warehouse to write.")
@config_option()
@log_format_option
def backfill_command(
    first_night, last_night, input_pattern: str | None, db_path: Path, config_path: Path | None
) -> None:
    """Run the nights from --from to --to in date order, each published on its own.

    Stops at the first night that fails (exit 1); the nights before it stay published, so
    the same command, started again from that night, finishes the range.
    """
    if last_night < first_night:
        raise click.UsageError("--to is before --from")
    settings = _settings(config_path)
    night, last = _night(first_night, settings, "--from"), _night(last_night, settings, "--to")
    while night <= last:
        input_dir = None if input_pattern is None else Path(input_pattern.replace("{as_of}", night.isoformat()))
        result = _run(settings, input_dir, night, db_path)
        loaded = sum(counts.rows_loaded for counts in result.files.values())
        quarantined = sum(counts.rows_quarantined for counts in result.files.values())
        flags = result.con.execute("SELECT count(*) FROM refund_flags").fetchone()[0]
        source = (
            "replayed from the warehouse" if input_dir is None else f"{loaded} rows loaded, {quarantined} quarantined"
        )
        _finish(result, "succeeded", [f"{night}  run {result.run_id}  {source}, {flags} flags"], warehouse=str(db_path))
        notify.night_finished(settings.notify, result, str(db_path))
        night += timedelta(days=1)


@main.command("validate")
@_common_options
@log_format_option
@db_option("A warehouse whose stored records the exports add to, opened read-only; default: none.", default=None)
def validate_command(input_dir: str | None, as_of, config_path: Path | None, db_path: Path | None) -> None:
    """Check the exports and show what would be quarantined and flagged; write nothing."""
    if input_dir is None:
        raise click.UsageError("Missing option '--input'.")
    settings = _settings(config_path)
    result = _run(settings, Path(input_dir), _as_of(as_of, settings), db_path, publish_results=False)
    errors = result.con.execute(
        'SELECT source, line, "column", message FROM quarantine ORDER BY source, line LIMIT 20'
    ).fetchall()
    lines = summary_lines(result)
    if errors:
        lines.append("  first quarantined rows:")
        lines += [f"    {source} line {line} [{column}]: {message}" for source, line, column, message in errors]
    first = [dict(zip(("source", "line", "column", "message"), error, strict=False)) for error in errors]
    _finish(result, "validated", lines, first_quarantined=first)


def _finish(result, status: str, lines: list[str], **fields) -> None:
    """The summary: `lines` on standard output, or with --log-format json one `run_finished` event
    (the summary's fields, `status` and `fields`) and nothing else."""
    if logs.current_format() == "json":
        logs.log.info(
            "run %s %s",
            result.run_id,
            status,
            extra={"event": "run_finished", "status": status} | summary_fields(result) | fields,
        )
    else:
        for line in lines:
            click.echo(line)


def _fail(message: str, exit_code: int = 1, **fields):
    """End the command: the failure reported (one line, or a `run_failed` event), then `exit_code`.

    A failure that Ctrl-C caused is reported as the interrupt it is."""
    if _interrupt_received.is_set():
        message, exit_code = "interrupted", INTERRUPTED_EXIT_CODE
    logs.run_failed(message, exit_code, **fields)
    raise SystemExit(exit_code)


def _settings(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None


def _as_of(value: date | None, settings: Settings) -> date:
    return _night(value, settings) if value is not None else default_as_of(settings)


def _night(value: date, settings: Settings, option: str = "--as-of") -> date:
    """`value`, if it is a night the job can run: from FIRST_NIGHT to MAX_DAYS_AHEAD days after
    today in billing time; else a usage error naming `option`."""
    last = datetime.now(ZoneInfo(settings.billing_time_zone)).date() + timedelta(days=MAX_DAYS_AHEAD)
    if value < FIRST_NIGHT:
        raise click.BadParameter(
            f"{value} is before {FIRST_NIGHT}, the first night a run can be for", param_hint=f"'{option}'"
        )
    if value > last:
        raise click.BadParameter(
            f"{value} is after {last}, {MAX_DAYS_AHEAD} days after today in billing time "
            f"({settings.billing_time_zone})",
            param_hint=f"'{option}'",
        )
    return value


def _run(settings: Settings, input_dir: Path | None, as_of: date, db_path: Path | None, publish_results: bool = True):
    return _night_or_fail(
        settings, as_of, lambda: run(settings, input_dir, as_of, db_path, publish_results), publish_results
    )


def _night_or_fail(settings: Settings, as_of: date, night: Callable[[], RunResult], publish_results: bool = True):
    """`night()`'s result; a night that fails ends the command in one line (exit 1), after telling
    people when it was to be published."""
    try:
        return night()
    except Exception as error:
        if publish_results:  # a night that was to be published failed: tell people
            notify.night_failed(settings.notify, as_of.isoformat(), _failure_message(error), **logs.fields_of(error))
        if not isinstance(error, INPUT_PROBLEMS):
            raise
        _fail(str(error), as_of=as_of.isoformat(), **logs.fields_of(error), **_failure_fields(error))


def _failure_message(error: Exception) -> str:
    """What a failure says: its own message, or for an unexpected error its type and first line."""
    if isinstance(error, INPUT_PROBLEMS):
        return str(error)
    detail = str(error).strip().splitlines()[:1]
    return f"run failed on an unexpected error ({type(error).__name__}{': ' + detail[0] if detail else ''})"


def _failure_fields(error: Exception) -> dict:
    """What a failure carries beyond its message: a rejected night's files over the limit."""
    return {"files_over_limit": error.files_over_limit} if isinstance(error, TooManyBadRows) else {}


@main.command("query")
@click.argument("sql")
@db_option("The DuckDB warehouse to read, read-only.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="How to print the result.",
)
def query_command(sql: str, db_path: Path, output_format: str) -> None:
    """Run SQL on the warehouse, read-only, and print the result ("-" reads the SQL from stdin).

    Safe at any time, a nightly run included: it reads the night published last. For your own
    tools, open the same --db file read-only (duckdb -readonly, duckdb.connect(path,
    read_only=True)), or the Parquet exports (docs/analysts.md). A statement that would write
    fails (exit code 1).
    """
    import sys

    from jobs.tools.query import QueryError, render, run_query

    if sql == "-":
        sql = sys.stdin.read()
    try:
        columns, rows = run_query(db_path, sql)
    except QueryError as error:
        click.echo(f"refund-recon: {error}", err=True)
        raise SystemExit(1) from None
    click.echo(render(columns, rows, output_format), nl=False)


@main.command("dictionary")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown here (e.g. docs/data-dictionary.md) instead of printing it.",
)
def dictionary_command(out_path: Path | None) -> None:
    """Print (or write) the data dictionary: every table, view and column of the warehouse."""
    from jobs.outputs.dictionary import markdown, write_markdown

    if out_path is None:
        click.echo(markdown(), nl=False)
    else:
        try:
            write_markdown(out_path)
        except OSError as error:
            _fail(cannot_write(out_path, error))
        click.echo(f"wrote {out_path}")


@main.command("report")
@db_option("The DuckDB warehouse to read, read-only.")
@click.option(
    "--from",
    "outputs",
    type=click.Path(path_type=Path),
    help="A run's Parquet outputs (<folder>/<table>/as_of=<D>/) to read instead of a warehouse; "
    "the report is written into that folder.",
)
@click.option("--as-of", type=Night(), help="The night to report on (its latest run); default: the latest run.")
@config_option("TOML settings file; [privacy] mask_shared_report decides the shared copy.")
@click.pass_context
def report_command(context: click.Context, db_path: Path, outputs: Path | None, as_of, config_path) -> None:
    """(Re)write a night's HTML report next to the warehouse (or into --from), and its masked shared copy."""
    from jobs.outputs.report import ReportError, find_run, write_report, write_report_from

    if outputs is not None and context.get_parameter_source("db_path") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--from and --db cannot be combined (read a warehouse or a run's Parquet outputs)")
    settings = _settings(config_path)
    try:
        if outputs is not None:
            paths = write_report_from(outputs, as_of, settings)
        else:
            paths = write_report(db_path, find_run(db_path, as_of, settings), settings)
    except ReportError as error:
        click.echo(f"refund-recon: {error}", err=True)
        raise SystemExit(1) from None
    for path in paths:
        click.echo(f"wrote {path}")


@main.command("generate")
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True, max=1000),
    required=True,
    help="Scale factor: 1 is about 10,000 entities, 50,000 purchases, 20,000 refunds and "
    "5,000,000 usage rows; 0.01 a hundredth of that.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="The same seed gives byte-identical files.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write purchases, usage, refunds and account_status to.",
)
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--as-of",
    type=Night(),
    default="2026-03-31",
    show_default=True,
    help="The last business date of the year of history (a few records fall after it).",
)
def generate_command(scale: float, seed: int, out_dir: Path, file_format: str, as_of) -> None:
    """Write a synthetic night of exports where every rule and signal fires (docs/generator.md)."""
    import duckdb

    from jobs.errors import first_line
    from jobs.tools.generate import generate

    try:
        rows = generate(out_dir, scale, seed, file_format, as_of)
    except (OSError, duckdb.Error) as error:
        click.echo(f"refund-recon: generating failed ({first_line(error)})", err=True)
        raise SystemExit(1) from None
    for stem, count in rows.items():
        click.echo(f"wrote {out_dir / f'{stem}.{file_format}'}  {count:,} rows")
