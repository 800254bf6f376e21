"""A night's Parquet outputs as the tables the report reads: `refund-recon report --from` (#13).

The folder holds `<table>/as_of=<D>/*.parquet`: the DuckDB engine's Parquet exports
(`<db dir>/exports/parquet`, one `data.parquet` a night) or a Spark run's `<out>` (`part-*`
files). On an in-memory DuckDB each table the report's steps (sql/report/) read becomes a view
over those files, given to DuckDB as a list of files (no path is ever spelled into SQL):

- `runs`: the run of each night of the trend (tonight and up to `trend_nights - 1` before it);
- `<table>_history`: the table's partitions of those nights, the night in the Hive column `as_of`
  (a partition holds the latest run of its night, as a rerun replaces it);
- `purchases`, `refunds`, `account_status`: the records tonight's run saw (the case timelines,
  and the ids masking knows);
- `rule_catalog`, `signal_catalog`: made by the code, as a run makes them; `case_dispositions`:
  empty (reviewers' decisions live in the warehouse `review` writes, not in a night's outputs).

A file or folder whose name starts with `.` or `_` is not read (a writer's temporary file, a
Spark `_SUCCESS` marker or `_temporary` folder).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from jobs.catalog import CATALOG
from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import quoted
from jobs.engine.steps import step

NIGHTLY_TABLES = (
    "refund_flags",
    "refund_verdicts",
    "abuse_signals",
    "abuse_cases",
    "validation_errors",
    "daily_reconciliation",
    "invariant_results",
    "gate_results",
    "pending_refund_decisions",
)
RECORD_TABLES = ("purchases", "refunds", "account_status")
_PARTITION = "as_of="


class OutputsError(Exception):
    """The folder holds no such night, or lacks a table the report reads."""


def open_night(folder: Path, as_of: date | None, trend_nights: int, settings) -> tuple[duckdb.DuckDBPyConnection, date]:
    """An in-memory DuckDB holding the report's tables for night `as_of` (default: the latest
    night in `folder`) and the nights of its trend; and that night."""
    nights = _nights(folder)
    night = as_of or nights[-1]
    if night not in nights:
        raise OutputsError(f"{folder}: no night {night} here (its nights: {nights[0]} to {nights[-1]})")
    window = [earlier for earlier in nights if earlier <= night][-trend_nights:]
    con = duckdb.connect(config=settings.duckdb_config(None))
    try:
        _view(con, "runs", _files(folder, "runs", window))
        for table in NIGHTLY_TABLES:
            _tonight(folder, table, night)
            _view(con, f"{table}_history", _files(folder, table, window))
        for table in RECORD_TABLES:
            _view(con, table, _tonight(folder, table, night), hive=False)
        _catalogs(con, settings)
    except BaseException:
        con.close()
        raise
    return con, night


def _nights(folder: Path) -> list[date]:
    """The nights `folder` holds a run of, oldest first."""
    if not folder.is_dir():
        raise OutputsError(f"{folder}: no such folder (pass the folder a run wrote its Parquet outputs to)")
    runs = folder / "runs"
    nights = sorted(
        night
        for night in (_night_of(partition) for partition in _visible(runs) if partition.is_dir())
        if night is not None and _partition_files(folder, "runs", night)
    )
    if not nights:
        raise OutputsError(f"{folder}: no night here (no runs/as_of=<night>/*.parquet: not a run's Parquet outputs)")
    return nights


def _night_of(partition: Path) -> date | None:
    if not partition.name.startswith(_PARTITION):
        return None
    try:
        return date.fromisoformat(partition.name.removeprefix(_PARTITION))
    except ValueError:
        return None


def _visible(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith((".", "_")))


def _partition_files(folder: Path, table: str, night: date) -> list[str]:
    partition = folder / table / f"{_PARTITION}{night.isoformat()}"
    return [str(path) for path in _visible(partition) if path.suffix == ".parquet" and path.is_file()]


def _tonight(folder: Path, table: str, night: date) -> list[str]:
    """The night's files of `table`; a night lacking them is refused."""
    files = _partition_files(folder, table, night)
    if not files:
        raise OutputsError(f"{folder}: night {night} lacks {table}/ (a run of this version writes it)")
    return files


def _files(folder: Path, table: str, nights: list[date]) -> list[str]:
    return [path for night in nights for path in _partition_files(folder, table, night)]


def _view(con: duckdb.DuckDBPyConnection, name: str, files: list[str], hive: bool = True) -> None:
    """View `name` over `files`, columns matched by name (a later night may add one). A time
    without a zone is Spark's default INT96 (`spark.sql.parquet.outputTimestampType`): the UTC
    instant, as the job's tables hold every time."""
    relation = con.read_parquet(files, union_by_name=True, hive_partitioning=hive)
    columns = [
        f"timezone('UTC', {quoted(column)}) AS {quoted(column)}" if str(kind) == "TIMESTAMP" else quoted(column)
        for column, kind in zip(relation.columns, relation.types, strict=True)
    ]
    relation.project(", ".join(columns)).create_view(name)


def _catalogs(con: duckdb.DuckDBPyConnection, settings) -> None:
    """`rule_catalog` and `signal_catalog` as a run makes them, and an empty `case_dispositions`."""
    engine = DuckDBEngine(con)
    engine.write_table("rule_catalog", CATALOG.rule_table())
    engine.write_table("signal_catalog", CATALOG.signal_table(settings.signals.weights, settings.signals.disabled))
    Runner(engine, {}).run((step("outputs/case_dispositions"),))
