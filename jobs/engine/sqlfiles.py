"""Where the SQL lives: `sql/` at the repository root, or `jobs/sql/` inside the wheel; and how
to name a column in SQL built from it. SQL files are read and run only as declared steps
(jobs/engine/)."""

from __future__ import annotations

import os
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
