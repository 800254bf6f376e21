"""Reviewer decisions on abuse cases: kept in the warehouse, read by every run.

`case_dispositions` is append-only and belongs to the reviewers: a run copies it in to
judge tonight's cases but never writes it, so no decision is lost to a nightly rebuild.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .publish import PublishError
from .sqlfiles import read_sql


def copy_prior_dispositions(con: duckdb.DuckDBPyConnection, db_path: Path | None) -> None:
    """Create `case_dispositions` in the run's database, filled from the warehouse if it has one."""
    con.execute(read_sql("outputs/case_dispositions.sql"))
    if db_path is None or not db_path.exists():
        return
    try:
        con.execute("ATTACH ? AS prior (READ_ONLY)", [str(db_path)])
    except duckdb.Error as error:
        raise PublishError(f"{db_path}: cannot open the warehouse ({str(error).splitlines()[0]})") from None
    try:
        has_table = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'prior' AND table_name = 'case_dispositions'"
        ).fetchone()[0]
        if has_table:
            con.execute("INSERT INTO case_dispositions BY NAME SELECT * FROM prior.case_dispositions")
    finally:
        con.execute("DETACH prior")
