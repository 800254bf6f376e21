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
from .engine.runner import Runner
from .engine.steps import discover, step
from .history import RECORD_VIEWS, prepare_versions_tables, store_delivery, versions_table
from .schemas import EXPORTS
from .sqlfiles import quoted

# Tables holding the latest run's view, replaced by each run. (The records themselves live in
# `<stem>_versions`, upserted by jobs/history.py; `purchases` etc. are views of them.)
LATEST_TABLES = (
    "validation_errors", "refund_flags", "refund_verdicts",
    "abuse_signals", "abuse_cases", "rule_catalog", "signal_catalog",
    "entity_groups", "fingerprint_sharing",
    "daily_reconciliation", "daily_reconciliation_by_rule", "invariant_results", "gate_results",
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
    "daily_reconciliation_by_rule_history": "daily_reconciliation_by_rule",
    "invariant_results_history": "invariant_results",
    "gate_results_history": "gate_results",
}


# Created in the warehouse if missing, never replaced by a run: reviewers own the first.
WAREHOUSE_DEFINITIONS = ("history/records_valid_on", "outputs/case_dispositions", "outputs/signal_precision",
                         *(view.name for view in discover("views")))
# What the definitions may read: the tables a run publishes.
WAREHOUSE_TABLES = (*LATEST_TABLES, *HISTORY_TABLES, *(versions_table(export) for export in EXPORTS.values()))


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


def _evolve_history(con: duckdb.DuckDBPyConnection, source: str, history: str) -> None:
    """A history keeps up with tonight's table: a column it lacks (a rule added since: its
    at_risk_<code>) is added, empty for earlier runs; a column tonight holds in a wider type
    (sums widened to DECIMAL(38,2)) is widened."""
    kept = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {history})").fetchall())
    for name, sql_type in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {source})").fetchall():
        if name not in kept:
            con.execute(f"ALTER TABLE {history} ADD COLUMN {quoted(name)} {sql_type}")
        elif kept[name] != sql_type and kept[name].startswith("DECIMAL") and sql_type.startswith("DECIMAL"):
            con.execute(f"ALTER TABLE {history} ALTER COLUMN {quoted(name)} TYPE {sql_type}")


def publish(runner: Runner) -> None:
    """Write the run's tables into the attached warehouse, atomically."""
    con = runner.engine.con
    try:
        con.execute("BEGIN TRANSACTION")
        _drop_record_tables_of_old_warehouses(con)
        prepare_versions_tables(con)
        if runner.params["run_mode"] == "delivery":
            store_delivery(runner)
        for table in LATEST_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE warehouse.{table} AS SELECT * FROM {table}")
        for history, source in HISTORY_TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS warehouse.{history} AS FROM {source} LIMIT 0")
            _evolve_history(con, source, f"warehouse.{history}")
            con.execute(f"INSERT INTO warehouse.{history} BY NAME FROM {source}")
        con.execute("USE warehouse")  # the reviewers' table and the views live in, and read, the warehouse
        Runner(runner.engine, runner.params, provided=WAREHOUSE_TABLES).run(
            tuple(step(name) for name in WAREHOUSE_DEFINITIONS))
        con.execute("USE memory")
        con.execute("COMMIT")
    except duckdb.Error as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass  # the failed COMMIT already ended the transaction
        con.execute("USE memory")
        raise PublishError(f"publishing failed, warehouse unchanged ({first_line(error)})") from None

