"""The nightly run, one stage after another: load -> validate -> rules -> publish.

Every stage works in a private in-memory DuckDB (spilling to the configured temp directory).
The warehouse is read, read-only, for the records stored by earlier nights (jobs/stages/history.py),
and written only by `publish`. A run that stops early, for any reason, writes nothing.
A run without an input folder replays its night from the warehouse alone.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow

from jobs.catalog import CATALOG
from jobs.config import Settings
from jobs.engine.engine import DuckDBEngine, duckdb_connection, warehouse_has
from jobs.engine.runner import Runner, check_plan
from jobs.engine.steps import discover, step
from jobs.errors import first_line
from jobs.logs import LoadMeter, bound_fields
from jobs.outputs.exports import write_exports
from jobs.outputs.report import ReportError, write_report
from jobs.params import LATE_PARAMS, night_params, seconds_param
from jobs.stages.abuse import build_cases, detect_abuse
from jobs.stages.decisions import DECISION_STEP, LIST_STEPS, decide_pending_refunds
from jobs.stages.dispositions import copy_reviewer_state
from jobs.stages.gates import check_gates
from jobs.stages.history import HistoryError, empty_delivery, merge_records, open_history, stored_records
from jobs.stages.loading import LoadedExport, find_exports, load_export
from jobs.stages.publish import publish, run_lock, warehouse_attached
from jobs.stages.reconciliation import reconcile
from jobs.stages.rules import evaluate
from jobs.stages.run_result import RunResult
from jobs.stages.schemas import EXPORTS
from jobs.stages.validation import FileCounts, enforce_bad_row_limit, validate

LENT_MEMORY_LIMIT = "64MiB"  # the run's DuckDB while the report and exports have theirs (_memory_lent)
log = logging.getLogger("refund_recon")

# Made before any stage: the macros, the quarantine, and the tables reviewers' state is copied into.
SETUP_STEPS = (
    "staging/macros",
    "staging/instant_text",
    "staging/masking",
    "staging/quarantine",
    "outputs/case_dispositions",
    "abuse/00_prior_cases",
    *LIST_STEPS,
)
# Every step a night runs, checked at start-up: each can be ordered, each input made, each parameter set.
NIGHT_STEPS = (
    *(step(name) for name in SETUP_STEPS),
    step("staging/csv_rejected_rows"),
    step("staging/quarantine_cleanup"),
    *discover("validation"),
    *discover("gates"),
    *discover("model"),
    *CATALOG.rules,
    step("outputs/refund_flags"),
    step("outputs/refund_verdicts"),
    *discover("abuse"),
    *CATALOG.signals,
    *discover("reconciliation"),
    step(DECISION_STEP),
    *discover("invariants"),
    step("outputs/validation_errors"),
    step("outputs/run_record"),
)
# Tables Python makes for the steps: the loaded and validated exports, the records merged over
# the stored ones, the catalogues and the run's inputs.
DELIVERED_TABLES = tuple(f"{prefix}_{stem}" for prefix in ("delivered", "quarantined_keys") for stem in EXPORTS)
MERGED_TABLES = (*EXPORTS, *(f"delivery_{stem}" for stem in EXPORTS))
PROVIDED_TABLES = (
    *(f"{prefix}_{stem}" for prefix in ("typed", "visible", "passing", "stored") for stem in EXPORTS),
    *DELIVERED_TABLES,
    *MERGED_TABLES,
    "csv_rejects",
    "gate_runs",
    "rule_catalog",
    "signal_catalog",
    "run_inputs",
)
RUN_INPUTS_SCHEMA = pyarrow.schema(
    [
        ("source", pyarrow.string()),
        ("file_name", pyarrow.string()),
        ("format", pyarrow.string()),
        ("sha256", pyarrow.string()),
        ("size_bytes", pyarrow.int64()),
        ("extra_columns", pyarrow.list_(pyarrow.string())),
    ]
    + [
        (name, pyarrow.int64())
        for name in ("rows_read", "rows_after_as_of", "rows_in", "rows_loaded", "rows_quarantined")
    ]
)


class RunFailed(Exception):
    """The run broke down before publishing (DuckDB out of memory, no room to spill...)."""


def default_as_of(settings: Settings) -> date:
    """Yesterday in the billing time zone (SPEC section 3)."""
    return datetime.now(ZoneInfo(settings.billing_time_zone)).date() - timedelta(days=1)


def run(
    settings: Settings, input_dir: Path | None, as_of: date, db_path: Path | None, publish_results: bool = True
) -> RunResult:
    """Check one night and publish it to `db_path`.

    `input_dir` None replays the night from the warehouse's stored records. With
    `publish_results` False nothing is written (validate); `db_path` is then only read.
    One run at a time per warehouse: a second one is refused at once (PublishError).
    """
    started_at = datetime.now(UTC)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    with bound_fields(run_id=run_id):
        if db_path is None or not publish_results:
            return _run(settings, input_dir, as_of, db_path, run_id, started_at, publish_results=False)
        with run_lock(db_path):
            return _run(settings, input_dir, as_of, db_path, run_id, started_at, publish_results=True)


def _run(
    settings: Settings,
    input_dir: Path | None,
    as_of: date,
    db_path: Path | None,
    run_id: str,
    started_at: datetime,
    publish_results: bool,
) -> RunResult:
    """The run itself.

    Raises StructuralError, HistoryError, TooManyBadRows, GateFailed, InvariantFailed, RunFailed
    or PublishError before anything is written; ReportError or ExportError once the warehouse is
    published.
    """
    mode = "replay" if input_dir is None else "delivery"
    runner = _start(settings, night_params(settings, run_id, as_of, mode, input_dir, started_at), db_path)
    con = duckdb_connection(runner.engine)
    result = RunResult(run_id, as_of, {}, runner)
    log.info(
        "run %s for %s (%s)",
        run_id,
        as_of,
        mode,
        extra={
            "event": "run_started",
            "as_of": as_of.isoformat(),
            "mode": mode,
            "input_dir": None if input_dir is None else str(input_dir),
            "warehouse": str(db_path) if publish_results else None,
        },
    )
    try:
        open_history(con, db_path, as_of, replay=input_dir is None)
        runner.provide(*(f"stored_{stem}" for stem in EXPORTS))
        _check_night(runner, settings, input_dir, result)
    except duckdb.Error as error:  # out of memory, no room to spill, ...
        raise RunFailed(f"run failed, nothing written ({first_line(error)})") from None
    if not publish_results:
        copy_reviewer_state(con)  # read-only: the night as it would be decided (validate, backtest)
        build_cases(runner)
        decide_pending_refunds(runner)
        return result
    assert db_path is not None, "a run that publishes has a warehouse"
    with stage(result, "publish"), warehouse_attached(con, db_path):
        # Reviewers' decisions and the block and allow lists are read from the copy being published,
        # under the write lock that their own writes take: none slips in unseen, none is lost to the swap.
        copy_reviewer_state(con)
        close_night(runner, result)
        publish(runner)
    # Derived files, each written whole or not at all, from the committed warehouse.
    with _memory_lent(con, settings):
        if settings.write_report:
            with stage(result, "report"):
                try:
                    result.report_paths = write_report(db_path, run_id, settings)
                except (OSError, ReportError) as error:
                    raise ReportError(f"writing the report failed; the warehouse is published ({error})") from None
        if settings.write_exports:
            with stage(result, "exports"):
                result.export_paths = write_exports(db_path, run_id, settings, result)
    return result


def _check_night(runner: Runner, settings: Settings, input_dir: Path | None, result: RunResult) -> None:
    """The stages before publishing: load and validate (or replay), gates, rules, signals, reconcile."""
    if input_dir is None:
        _replay_night(runner, result)
    else:
        _load_night(runner, settings, input_dir, result)
    judge_night(runner, settings, result, earlier_runs=warehouse_has(duckdb_connection(runner.engine), "runs"))


def judge_night(runner: Runner, settings: Settings, result: RunResult, earlier_runs: bool | None) -> None:
    """Gates, rules, signals and reconciliation over the night's records, on either engine.

    `earlier_runs`: whether the warehouse holds earlier runs for the volume gate; None runs no
    gate (Spark: `gate_results` stays empty, docs/spark.md).
    """
    runner.provide(*MERGED_TABLES)
    if earlier_runs is None:
        runner.run((step("gates/gate_results"),))
    else:
        with stage(result, "gates") as rows:
            rows["failed"] = len(check_gates(runner, settings, earlier_runs))
    with stage(result, "rules") as rows:
        evaluate(runner)
        rows["flags"] = _count(runner, "refund_flags")
    with stage(result, "signals") as rows:
        detect_abuse(runner, settings.signals)
        rows["signals"] = _count(runner, "abuse_signals")
    with stage(result, "reconcile"):
        reconcile(runner)


def close_night(runner: Runner, result: RunResult) -> None:
    """The cases, the pending refunds' decisions and the run's record (`run_record`): the end of
    a night on either engine."""
    build_cases(runner)
    decide_pending_refunds(runner)
    runner.bind(
        run_finished_at=datetime.now(UTC),
        stage_seconds=seconds_param(result.stage_seconds),
        step_seconds=seconds_param(runner.step_seconds),
    )
    runner.run((step("outputs/run_record"),))


def _load_night(runner: Runner, settings: Settings, input_dir: Path, result: RunResult) -> None:
    """Load and validate tonight's exports, then merge them over the stored records."""
    con = duckdb_connection(runner.engine)
    with stage(result, "load") as rows, _reading_in_file_order(con, settings):
        exports = find_exports(input_dir)
        meter = LoadMeter(con, [file.size_bytes for file in exports.values()])
        loaded = {}
        for stem, file in exports.items():
            with meter.reading(file.size_bytes):
                loaded[stem] = load_export(con, file)
            meter.rows_read(loaded[stem].rows_read)
        runner.provide(*(f"typed_{stem}" for stem in loaded))
        rows["rows read"] = sum(item.rows_read for item in loaded.values())
    with stage(result, "validate") as rows:
        result.files = validate(runner, loaded)
        runner.provide(*DELIVERED_TABLES)
        rows["loaded"] = sum(counts.rows_loaded for counts in result.files.values())
        rows["quarantined"] = sum(counts.rows_quarantined for counts in result.files.values())
        enforce_bad_row_limit(runner.engine, result.files, settings.max_bad_row_fraction)
        record_inputs(runner, loaded, result.files)
        merge_records(runner.engine, loaded, result.run_id, result.as_of)


def _replay_night(runner: Runner, result: RunResult) -> None:
    """No input: the night's records are the stored versions valid on as_of."""
    con = duckdb_connection(runner.engine)
    with stage(result, "load") as rows:
        rows["stored records"] = stored_records(con)
        if not rows["stored records"]:
            raise HistoryError(f"nothing is stored on or before {result.as_of} to replay; give --input")
        empty_delivery(con)
        runner.provide(*DELIVERED_TABLES)
        record_inputs(runner, {}, {})
        merge_records(runner.engine, {}, result.run_id, result.as_of)


def _count(runner: Runner, table: str) -> int:
    return runner.engine.fetch(f"SELECT count(*) FROM {table}", {})[1][0][0]


@contextmanager
def _memory_lent(con, settings: Settings) -> Iterator[None]:
    """While the report and exports read the warehouse on DuckDBs of their own (each held to the
    memory limit), the run's DuckDB keeps its tables in its temp folder and its memory to
    `LENT_MEMORY_LIMIT`, so the two together stay near one limit (issue #12: a 3.07 GiB peak at
    scale 50 before). Its tables stay readable (the summary, the tests); the limit is restored after.
    Moving them costs a write of what it holds (~1 s at scale 1), so nothing is lent when neither
    output is written."""
    if not (settings.write_report or settings.write_exports):
        yield
        return
    try:
        con.execute("SET memory_limit = ?", [LENT_MEMORY_LIMIT])
    except duckdb.Error as error:  # no room in the temp folder to move its tables to: keep them in memory
        log.warning("the run's DuckDB keeps its memory during the report and exports (%s)", first_line(error))
    try:
        yield
    finally:
        con.execute("SET memory_limit = ?", [settings.duckdb_memory_limit])


@contextmanager
def _reading_in_file_order(con, settings: Settings) -> Iterator[None]:
    """Loading numbers CSV rows by their position, so it keeps insertion order whatever
    `[duckdb] preserve_insertion_order` says for the rest of the run."""
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = ?", [settings.duckdb_preserve_insertion_order])


def _start(settings: Settings, params: dict, db_path: Path | None) -> Runner:
    """A private DuckDB with the run's settings and a runner over it, after checking at start-up
    that every step of the night can run: its inputs made, its parameters set."""
    check_plan(NIGHT_STEPS, PROVIDED_TABLES, (*params, *LATE_PARAMS))
    con = duckdb.connect(":memory:", config=settings.duckdb_config(db_path))
    con.execute("SET TimeZone = ?", [settings.billing_time_zone])
    runner = Runner(DuckDBEngine(con), params)
    runner.run(tuple(step(name) for name in SETUP_STEPS))
    return runner


def record_inputs(runner: Runner, loaded: dict[str, LoadedExport], counts: dict[str, FileCounts]) -> None:
    """`run_inputs` and `validation_errors`: what came in, and what was turned away."""
    runner.engine.write_table(
        "run_inputs",
        pyarrow.Table.from_pylist(
            [
                {
                    "source": stem,
                    "file_name": item.file.path.name,
                    "format": item.file.format,
                    "sha256": item.file.sha256,
                    "size_bytes": item.file.size_bytes,
                    "extra_columns": list(item.extra_columns),
                    "rows_read": counts[stem].rows_read,
                    "rows_after_as_of": counts[stem].rows_after_as_of,
                    "rows_in": counts[stem].rows_in,
                    "rows_loaded": counts[stem].rows_loaded,
                    "rows_quarantined": counts[stem].rows_quarantined,
                }
                for stem, item in loaded.items()
            ],
            schema=RUN_INPUTS_SCHEMA,
        ),
    )
    runner.provide("run_inputs")
    runner.run((step("outputs/validation_errors"),))


class stage:
    """Time a stage into `result.stage_seconds`, its peak memory into `result.stage_peak_rss_bytes`,
    and log its start and end (jobs/logs.py renders them: progress, plain lines or JSON).

    The body may put row counts into the yielded dict; they are logged with the end.
    """

    def __init__(self, result: RunResult, name: str):
        self.result, self.name = result, name
        self.rows: dict[str, int] = {}

    def __enter__(self) -> dict[str, int]:
        _reset_peak_rss()
        log.info("%s ...", self.name, extra={"event": "stage_started", "stage": self.name})
        self.started = time.perf_counter()
        return self.rows

    def __exit__(self, exc_type, *exc_info):
        seconds = time.perf_counter() - self.started
        self.result.stage_seconds[self.name] = seconds
        self.result.stage_peak_rss_bytes[self.name] = peak = _peak_rss_bytes()
        facts = {"stage": self.name, "seconds": round(seconds, 3), "peak_rss_bytes": peak, "rows": dict(self.rows)}
        if exc_type is not None:
            log.info("%s failed after %.1fs", self.name, seconds, extra={"event": "stage_failed"} | facts)
            return
        counts = ", ".join(f"{name} {count:,}" for name, count in self.rows.items())
        log.info(
            "%s done in %.1fs%s",
            self.name,
            seconds,
            f" ({counts})" if counts else "",
            extra={"event": "stage_finished"} | facts,
        )


def _reset_peak_rss() -> None:
    """Start a fresh peak-memory mark (Linux: VmHWM is reset by writing 5 to clear_refs)."""
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak is then the process's so far
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes() -> int | None:
    """The process's peak resident memory since the last reset, or None where unknown."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None
