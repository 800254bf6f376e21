"""Publishing: move a finished run into the warehouse in one transaction.

Everything before this step happens in a private in-memory DuckDB; the warehouse file is
opened only here. The latest-run tables are replaced, the history tables and `runs` are
appended to, and all of it commits at once or not at all: a run that fails or is killed
leaves the previous night's warehouse as it was.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# Tables holding the latest run's view, replaced by each run.
LATEST_TABLES = (
    "purchases", "usage", "refunds", "account_status",
    "validation_errors", "refund_flags", "refund_verdicts",
    "abuse_signals", "abuse_cases", "rule_catalog",
)
# Tables that keep every run's rows, appended to by each run (the history of the table named).
HISTORY_TABLES = {
    "runs": "run_record",
    "validation_errors_history": "validation_errors",
    "refund_flags_history": "refund_flags",
    "refund_verdicts_history": "refund_verdicts",
}


class PublishError(Exception):
    """The warehouse could not be written; it is left as it was."""


def publish(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """Write the run's tables into the warehouse at `db_path`, atomically."""
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        con.execute("ATTACH ? AS warehouse", [str(db_path)])
    except (OSError, duckdb.Error) as error:
        raise PublishError(f"{db_path}: cannot open the warehouse ({_first_line(error)})") from None
    try:
        con.execute("BEGIN TRANSACTION")
        for table in LATEST_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE warehouse.{table} AS SELECT * FROM {table}")
        for history, source in HISTORY_TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS warehouse.{history} AS FROM {source} LIMIT 0")
            con.execute(f"INSERT INTO warehouse.{history} BY NAME FROM {source}")
        con.execute("COMMIT")
    except duckdb.Error as error:
        con.execute("ROLLBACK")
        raise PublishError(f"{db_path}: publishing failed, warehouse unchanged ({_first_line(error)})") from None
    finally:
        con.execute("DETACH warehouse")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
