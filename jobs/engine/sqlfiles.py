"""Where the SQL lives: `sql/` at the repository root, or `jobs/sql/` inside the wheel; and how
to name a column, or write one of the job's own values, in SQL built from it. SQL files are
read and run only as declared steps (jobs/engine/)."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # jobs/
# REFUND_RECON_SQL_DIR points the job at another copy of sql/ (the test that adds a rule uses it).
SQL_DIR = (
    Path(os.environ["REFUND_RECON_SQL_DIR"])
    if os.environ.get("REFUND_RECON_SQL_DIR")
    else next(path for path in (_PACKAGE / "sql", _PACKAGE.parent / "sql") if path.is_dir())
)


def quoted(identifier: str) -> str:
    """`identifier` as a quoted SQL identifier (any name a file's header may carry)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str | date | None) -> str:
    """One of the job's own values (a run id, a file's path, a night, its cut-off) as a SQL literal,
    for SQL a statement cannot bind parameters into (a view's definition)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + value.replace("'", "''") + "'"
