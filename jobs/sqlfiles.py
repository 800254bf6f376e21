"""Where the SQL lives: `sql/` at the repository root, or `jobs/sql/` inside the wheel; and how
to name a column in SQL built from it."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# REFUND_RECON_SQL_DIR points the job at another copy of sql/ (the test that adds a rule uses it).
SQL_DIR = (Path(os.environ["REFUND_RECON_SQL_DIR"]) if os.environ.get("REFUND_RECON_SQL_DIR")
           else next(path for path in (_PACKAGE / "sql", _PACKAGE.parent / "sql") if path.is_dir()))


@cache
def read_sql(relative: str) -> str:
    """The text of `sql/<relative>`."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def sql_files(folder: str) -> list[Path]:
    """The .sql files of `sql/<folder>`, in name order."""
    return sorted((SQL_DIR / folder).glob("*.sql"))


def quoted(identifier: str) -> str:
    """`identifier` as a quoted SQL identifier (any name a file's header may carry)."""
    return '"' + identifier.replace('"', '""') + '"'
