"""`refund-recon generate`: a synthetic night of exports at any scale (docs/generator.md).

The data is built by the set-based DuckDB SQL of `sql/generate/` (run in name order) from
three variables, seed, scale and as_of; every random draw is a hash of the seed, so the files
are byte-identical for a seed whatever the thread count. This module only runs the SQL and
writes the four exports, ordered by their key, in the columns and types of SPEC section 2.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from .schemas import EXPORTS, SQL_TYPES
from .sqlfiles import sql_files

FORMATS = ("csv", "parquet")
DEFAULT_AS_OF = date(2026, 3, 31)
BILLING_TIME_ZONE = "Asia/Shanghai"  # generated times are billing time of the default zone (UTC+8)


class GenerateError(Exception):
    """Bad generator options; the message is one line for the user."""


def generate(out_dir: Path, scale: float, seed: int, file_format: str = "csv",
             as_of: date = DEFAULT_AS_OF) -> dict[str, int]:
    """Write purchases, usage, refunds and account_status to `out_dir`; rows written per export stem."""
    if file_format not in FORMATS:
        raise GenerateError(f"format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    if not 0 < scale <= 1000:
        raise GenerateError(f"scale must be > 0 and <= 1000, got {scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, value in (("seed", seed), ("scale", float(scale)), ("as_of", as_of)):
            con.execute(f"SET VARIABLE {name} = ?", [value])
        for path in sql_files("generate"):
            con.execute(path.read_text(encoding="utf-8")).fetchall()  # a relation may not follow a pending result
        return {stem: _write(con, stem, out_dir / f"{stem}.{file_format}", file_format) for stem in EXPORTS}
    finally:
        con.close()


def _write(con: duckdb.DuckDBPyConnection, stem: str, path: Path, file_format: str) -> int:
    """Write one export ordered by its key (a duplicate after its original); its row count."""
    export = EXPORTS[stem]
    columns = ", ".join(_column(name, kind, file_format) for name, kind in export.columns.items())
    order = ", ".join(f'"{name}"' for name in export.key)
    relation = con.sql(f'SELECT {columns} FROM "{stem}" ORDER BY {order}, _tiebreak')
    if file_format == "csv":
        relation.write_csv(str(path), header=True)
    else:
        relation.write_parquet(str(path))
    return con.execute(f'SELECT count(*) FROM "{stem}"').fetchall()[0][0]


def _column(name: str, kind: str, file_format: str) -> str:
    """A column as written: its SPEC type; timestamps as ISO 8601 text with the +08:00 offset in CSV."""
    if kind != "timestamp":
        return f'CAST("{name}" AS {SQL_TYPES[kind]}) AS "{name}"'
    if file_format == "csv":
        return f"""strftime("{name}", '%Y-%m-%dT%H:%M:%S+08:00') AS "{name}\""""
    return f"""timezone('{BILLING_TIME_ZONE}', "{name}") AS "{name}\""""
