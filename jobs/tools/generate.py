"""`refund-recon generate`: a synthetic night of exports at any scale (docs/generator.md).

The data is built by the set-based DuckDB SQL steps of `sql/generate/` (ordered by what they
read, like the night's) from seed, scale and as_of; every random draw is a hash of the seed, so
the files are byte-identical for a seed whatever the thread count. This module sets the
parameters, runs the steps and writes the four exports, ordered by their key, in the columns
and types of SPEC section 2.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import duckdb

from jobs.engine.engine import DuckDBEngine, Typed
from jobs.engine.runner import Runner
from jobs.engine.steps import discover
from jobs.stages.schemas import EXPORTS, SQL_TYPES

FORMATS = ("csv", "parquet")
DEFAULT_AS_OF = date(2026, 3, 31)
BILLING_TIME_ZONE = "Asia/Shanghai"  # generated times are billing time of the default zone (UTC+8)


class GenerateError(Exception):
    """Bad generator options; the message is one line for the user."""


def generate(
    out_dir: Path, scale: float, seed: int, file_format: str = "csv", as_of: date = DEFAULT_AS_OF
) -> dict[str, int]:
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
        runner = Runner(DuckDBEngine(con), _params(seed, scale, as_of))
        steps = discover("generate")
        runner.run(steps[:1])  # the macros every other step draws with
        runner.run(steps[1:-1])
        runner.bind(file_rows=Typed({stem: _count(con, stem) for stem in EXPORTS}, "MAP(VARCHAR, BIGINT)"))
        runner.run(steps[-1:])  # the bad rows, a share of each file
        return {stem: _write(con, stem, out_dir / f"{stem}.{file_format}", file_format) for stem in EXPORTS}
    finally:
        con.close()


def _params(seed: int, scale: float, as_of: date) -> dict:
    """The steps' parameters. Generated times are billing-time TIMESTAMPs without a zone."""
    as_of_end = datetime.combine(as_of + timedelta(days=1), clock(0))
    return {
        "seed": seed,
        "as_of": as_of,
        "as_of_end": as_of_end,
        # Purchases span the 365 billing days ending on as_of and 2 days after it.
        "history_start": as_of_end - timedelta(days=365),
        "history_seconds": Typed(367 * 86400, "INTEGER"),
        # The export was taken at this moment: refunds processed later are still pending in it.
        "export_at": as_of_end + timedelta(days=2),
        # Scale 1: 10,000 entities, 50,000 purchases, 20,000 refunds, 5,000,000 usage rows.
        "background_entities": Typed(max(20, _rounded(9500 * scale)), "BIGINT"),
        "usage_target": Typed(_rounded(5_000_000 * scale), "BIGINT"),
        # Share of background orders that are refunded.
        "refund_share": Typed(Decimal("0.385"), "DECIMAL(3,3)"),
        # An order id no purchase has.
        "unknown_order": "899999999999",
    }


def _rounded(value: float) -> int:
    """Half away from zero, as SQL's round() (Python's round() goes to even)."""
    return math.floor(value + 0.5)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]


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
    return _count(con, stem)


def _column(name: str, kind: str, file_format: str) -> str:
    """A column as written: its SPEC type; timestamps as ISO 8601 text with the +08:00 offset in CSV."""
    if kind != "timestamp":
        return f'CAST("{name}" AS {SQL_TYPES[kind]}) AS "{name}"'
    if file_format == "csv":
        return f"""strftime("{name}", '%Y-%m-%dT%H:%M:%S+08:00') AS "{name}\""""
    return f"""timezone('{BILLING_TIME_ZONE}', "{name}") AS "{name}\""""
