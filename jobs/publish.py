"""Publishing: move a finished run into the warehouse in one transaction.

Everything before this step happens in a private in-memory DuckDB; the warehouse file is
opened only at the end (`warehouse_attached`), where the run reads what reviewers decided
and writes its results. The latest-run tables are replaced, the history tables and `runs` are
appended to, and all of it commits at once or not at all: a run that fails or is killed
leaves the previous night's warehouse as it was.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .errors import PublishError, first_line
from .history import RECORD_VIEWS, store_delivery
from .sqlfiles import read_sql

# Tables holding the latest run's view, replaced by each run. (The records themselves live in
# `<stem>_versions`, upserted by jobs/history.py; `purchases` etc. are views of them.)
LATEST_TABLES = (
    "validation_errors", "refund_flags", "refund_verdicts",
    "abuse_signals", "abuse_cases", "rule_catalog", "signal_catalog",
    "entity_groups", "fingerprint_sharing",
    "daily_reconciliation", "invariant_results", "gate_results",
)
# Tables that keep every run's rows, appended to by each run (the history of the table named).
HISTORY_TABLES = {
    "runs": "run_record",
    "validation_errors_history": "validation_errors",
    "refund_flags_history": "refund_flags",
    "refund_verdicts_history": "refund_verdicts",
    "abuse_signals_history": "abuse_signals",
    "abuse_cases_history": "abuse_cases",
    "daily_reconciliation_history": "daily_reconciliation",
    "invariant_results_history": "invariant_results",
    "gate_results_history": "gate_results",
}


# Created in the warehouse if missing, never replaced by a run: reviewers own the first.
WAREHOUSE_DEFINITIONS = ("history/records_valid_on.sql", "outputs/case_dispositions.sql", "outputs/signal_precision.sql", "views/money_at_risk_by_rule_month.sql", "views/entity_refund_history.sql", "views/open_cases.sql", "views/flag_changes.sql")


def output_folder(db_path: Path, run_id: str, mode: str) -> Path:
    """Where a run's report and exports go: next to the warehouse for a night delivered from
    files; for a replay its own `replays/<run_id>/` beside the warehouse (created here), so a
    replay never overwrites what its night published (docs/operations.md)."""
    if mode != "replay":
        return db_path.parent
    folder = db_path.parent / "replays" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def warehouse_attached(con: duckdb.DuckDBPyConnection, db_path: Path) -> Iterator[None]:
    """Attach the warehouse as `warehouse` for writing; this takes DuckDB's one-writer lock.

    The read-only attachment the run read the history through is swapped for this one.
    """
    _detach_quietly(con)
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        con.execute("ATTACH ? AS warehouse", [str(db_path)])
    except (OSError, duckdb.Error) as error:
        raise PublishError(f"{db_path}: cannot open the warehouse ({first_line(error)})") from None
    try:
        yield
    except BaseException:
        _detach_quietly(con)
        raise
    try:
        con.execute("DETACH warehouse")
    except duckdb.Error as error:  # the checkpoint into the file failed; the commit is in the log
        raise PublishError(f"{db_path}: the night is committed (the warehouse is published), but writing it into the file "
                           f"failed ({first_line(error)}); the next open replays it") from None


def _detach_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("DETACH warehouse")
    except duckdb.Error:
        pass  # the error on the way out is the one to report


@contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """Hold `.<warehouse name>.lock` beside the warehouse for a whole run: one run at a time.

    DuckDB's own lock guards only the moment of publishing; this one refuses a second run at
    once, before it spends the night's work. The OS frees it when the process ends, however.
    """
    lock_path = db_path.parent / f".{db_path.name}.lock"
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        stream = lock_path.open("a")
    except OSError as error:
        raise PublishError(f"{db_path}: cannot take the run lock {lock_path} ({error.strerror})") from None
    with stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError(f"{db_path}: another run is writing this warehouse; refused") from None
        yield


def warehouse_has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the attached warehouse already holds `table`."""
    return con.execute(
        "SELECT count(*) > 0 FROM duckdb_tables() WHERE database_name = 'warehouse' AND table_name = ?", [table]
    ).fetchone()[0]


def _drop_record_tables_of_old_warehouses(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses written before records had history held them as tables; they are views now."""
    for name in RECORD_VIEWS:
        if warehouse_has(con, name):
            con.execute(f"DROP TABLE warehouse.{name}")


def publish(con: duckdb.DuckDBPyConnection) -> None:
    """Write the run's tables into the attached warehouse, atomically."""
    try:
        con.execute("BEGIN TRANSACTION")
        _drop_record_tables_of_old_warehouses(con)
        if con.execute("SELECT getvariable('run_mode')").fetchone()[0] == "delivery":
            store_delivery(con)
        for table in LATEST_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE warehouse.{table} AS SELECT * FROM {table}")
        for history, source in HISTORY_TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS warehouse.{history} AS FROM {source} LIMIT 0")
            con.execute(f"INSERT INTO warehouse.{history} BY NAME FROM {source}")
        con.execute("USE warehouse")  # the reviewers' table and the views live in, and read, the warehouse
        for definition in WAREHOUSE_DEFINITIONS:
            con.execute(read_sql(definition))
        con.execute("USE memory")
        con.execute("COMMIT")
    except duckdb.Error as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass  # the failed COMMIT already ended the transaction
        con.execute("USE memory")
        raise PublishError(f"publishing failed, warehouse unchanged ({first_line(error)})") from None

