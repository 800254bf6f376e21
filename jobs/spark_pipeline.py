"""The nightly run on Spark (issue #13): jobs/pipeline.py's stages and SQL files, on a SparkSession,
from Parquet exports to Parquet outputs under `<out>/<table>/as_of=<D>/`.

load (Parquet, numbered by row index) -> validate -> gates, rules, signals, reconcile -> cases,
decisions, run record -> write the night (staged, then committed). Before the first row is read,
Spark's analyser plans every step of the night on empty inputs: a file that does not carry over
stops the run naming it (`check_night`).

What differs from the DuckDB night (docs/spark.md): there is no warehouse. The night's records
are tonight's delivery alone (the lake's export is its own snapshot: no history is merged), the
volume gate has no earlier nights, reviewers' decisions and lists live in DuckDB's warehouse (none
here), and case ids carry over from the latest earlier night's `abuse_cases` under `<out>`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import PurePosixPath

from jobs.config import Settings
from jobs.engine.engine import Typed
from jobs.engine.runner import check_plan
from jobs.engine.spark import SparkEngine, SparkRunner
from jobs.engine.steps import step
from jobs.logs import bound_fields
from jobs.outputs.lake import Lake, write_night
from jobs.params import LATE_PARAMS, night_params
from jobs.pipeline import (
    DELIVERED_TABLES,
    NIGHT_STEPS,
    PROVIDED_TABLES,
    SETUP_STEPS,
    close_night,
    judge_night,
    record_inputs,
    stage,
)
from jobs.stages.history import merge_records, versions_ddl
from jobs.stages.loading import ExportFile, LoadedExport
from jobs.stages.run_result import RunResult
from jobs.stages.schemas import EXPORTS, SQL_TYPES
from jobs.stages.spark_loading import find_parquet_exports, load_parquet_export, locate_parquet_exports
from jobs.stages.validation import FileCounts, enforce_bad_row_limit, validate

log = logging.getLogger("refund_recon")
_PLANNED: set[tuple] = set()  # the plan keys (`_plan_key`) whose night check_night has planned


def spark_session(master: str | None, remote: str | None, settings: Settings):
    """A SparkSession for the run: a master URL (local[2], yarn, spark://...), Spark Connect, or
    the one spark-submit made. Its session zone is the billing zone (naive times are read in it,
    as on DuckDB) and column names are case-sensitive (a file may hold `Order_ID` beside `order_id`)."""
    from pyspark.sql import SparkSession  # type: ignore[import-not-found]  # the optional extra, imported when asked for

    builder = SparkSession.builder.appName("refund-recon")
    if remote:
        builder = builder.remote(remote)
    elif master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", settings.billing_time_zone)
    spark.conf.set("spark.sql.caseSensitive", "true")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # instants, as DuckDB writes them
    return spark


def run_on_spark(settings: Settings, spark, input_path: str, as_of: date, out: str) -> RunResult:
    """Check one night on Spark and write its outputs under `out`, whole or not at all.

    Raises StepError (a file does not carry over), StructuralError, TooManyBadRows, GateFailed or
    InvariantFailed before anything is written.
    """
    started_at = datetime.now(UTC)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    with bound_fields(run_id=run_id):
        params = night_params(settings, run_id, as_of, "delivery", input_path, started_at)
        check_plan(NIGHT_STEPS, PROVIDED_TABLES, (*params, *LATE_PARAMS))
        lake = Lake(spark, out)
        lake.finish_interrupted_commits()
        engine = SparkEngine(spark, settings.billing_time_zone)
        located = locate_parquet_exports(engine, input_path)  # a missing or CSV export stops the run first
        check_night(spark, settings, params)
        runner = SparkRunner(engine, params)
        result = RunResult(run_id, as_of, {}, runner)
        log.info(
            "run %s for %s on Spark",
            run_id,
            as_of,
            extra={"event": "run_started", "as_of": as_of.isoformat(), "mode": "delivery", "input_dir": input_path},
        )
        _night(runner, settings, result, lambda: _load(runner, located, result), lake)
        with stage(result, "publish"):
            write_night(lake, runner.engine, as_of, run_id)
    return result


def check_night(spark, settings: Settings, params: dict) -> None:
    """Spark's analyser over every step of the night, on empty inputs: a plan, not a run.
    Raises StepError naming the first file that does not carry over.

    Once per plan key in a process (a backfill's nights, the tests' shared session): what a plan
    checks is the steps and the types of their parameters, not the parameters' values.
    """
    planned = _plan_key(spark, settings, params)
    if planned in _PLANNED:
        return
    runner = SparkRunner(SparkEngine(spark, settings.billing_time_zone, analyse_only=True), params)
    with _stages_unlogged():
        _night(
            runner, settings, RunResult(params["run_id"], params["as_of"], {}, runner), lambda: _no_rows(runner), None
        )
    _PLANNED.add(planned)


def _plan_key(spark, settings: Settings, params: dict) -> tuple:
    """What the start-up plan depends on: the session, the zone the SQL is translated for, the
    signals that run, and each parameter's name and type (values are literals in the plan)."""
    types = tuple(
        sorted(
            (name, value.sql_type if isinstance(value, Typed) else type(value).__name__)
            for name, value in params.items()
        )
    )
    return id(spark), settings.billing_time_zone, tuple(sorted(settings.signals.disabled)), types


def _night(runner: SparkRunner, settings: Settings, result: RunResult, load, lake: Lake | None) -> None:
    """The night's stages, as jobs/pipeline.py runs them, over what `load` delivers."""
    engine = runner.engine
    runner.run(tuple(step(name) for name in SETUP_STEPS))
    loaded = load()
    for export in EXPORTS.values():  # no history on Spark: the night starts from no stored record
        engine.execute(versions_ddl(export, f"stored_{export.stem}", temporary=True), {})
    runner.provide(*(f"stored_{stem}" for stem in EXPORTS))
    with stage(result, "validate") as rows:
        result.files = validate(runner, loaded)
        runner.provide(*DELIVERED_TABLES)
        if engine.analyse_only:  # planned, not counted
            result.files = {stem: FileCounts(stem, 0, 0, 0, 0, 0) for stem in EXPORTS}
        else:
            rows["loaded"] = sum(counts.rows_loaded for counts in result.files.values())
            rows["quarantined"] = sum(counts.rows_quarantined for counts in result.files.values())
            enforce_bad_row_limit(engine, result.files, settings.max_bad_row_fraction)
        record_inputs(runner, loaded, result.files)
        merge_records(engine, loaded, result.run_id, result.as_of)
    judge_night(runner, settings, result, earlier_runs=None)  # no gates on Spark (docs/spark.md)
    with stage(result, "cases"):
        if lake is not None:
            lake.read_prior_cases(engine, result.as_of)
        close_night(runner, result)
        engine.execute("CREATE OR REPLACE VIEW runs AS SELECT * FROM run_record", {})


def _load(runner: SparkRunner, located: dict[str, str], result: RunResult) -> dict[str, LoadedExport]:
    """The night's located Parquet exports into `typed_<stem>`."""
    engine = runner.engine
    with stage(result, "load") as rows:
        loaded = {
            stem: load_parquet_export(engine, file) for stem, file in find_parquet_exports(engine, located).items()
        }
        runner.provide(*(f"typed_{stem}" for stem in loaded))
        rows["rows read"] = sum(item.rows_read for item in loaded.values())
    return loaded


def _no_rows(runner: SparkRunner) -> dict[str, LoadedExport]:
    """Empty `typed_<stem>` tables of the loader's columns, for the start-up check."""
    for export in EXPORTS.values():
        columns = ", ".join(f'"{name}" {SQL_TYPES[kind]}' for name, kind in export.columns.items())
        runner.engine.execute(
            f"CREATE TABLE typed_{export.stem} (_line BIGINT, {columns}, _extra_columns MAP(VARCHAR, VARCHAR), "
            f'_bad_types STRUCT("column" VARCHAR, value VARCHAR, expected VARCHAR)[])',
            {},
        )
    runner.provide(*(f"typed_{stem}" for stem in EXPORTS))
    return {
        stem: LoadedExport(ExportFile(export, PurePosixPath(f"{stem}.parquet"), "parquet", 0, ""), 0, ())  # type: ignore[arg-type]
        for stem, export in EXPORTS.items()
    }


@contextmanager
def _stages_unlogged() -> Iterator[None]:
    """The start-up check's stages are not the night's: their start and end are not logged."""
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)
