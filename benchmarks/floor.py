"""The floor: DuckDB merely reading the night's four exports, once, into tables.

Every column of every file is read and parsed to its SPEC type (`column_types()`, from
jobs/schemas.py: BIGINT, DECIMAL, TIMESTAMPTZ read in the billing time zone; extra CSV columns
as text), the way the job's own loading must at least do, and nothing else: no validation, no
rules, no writing. A row with a value that does not parse is skipped (`ignore_errors`), so bad
rows cannot stop the floor. The child process imports only DuckDB (not pandas or Pandera,
which the job needs), so its wall time is the reading and Python's start, nothing more.

    python -m benchmarks.floor --input DIR --types TYPES.json [--time-zone Asia/Shanghai]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

import duckdb


def column_types() -> dict[str, dict[str, str]]:
    """Export stem -> column -> DuckDB type, as the SPEC types them (imports Pandera: call in the parent)."""
    from jobs.stages.schemas import EXPORTS, SQL_TYPES

    return {stem: {name: SQL_TYPES[kind] for name, kind in export.columns.items()} for stem, export in EXPORTS.items()}


def read_night(input_dir: Path, types: dict[str, dict[str, str]], time_zone: str = "Asia/Shanghai") -> dict[str, int]:
    """Read each export into an in-memory table; return the rows read per export."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = ?", [time_zone])
    rows = {}
    for stem, columns in types.items():
        path = _export_path(input_dir, stem)
        if path.suffix == ".parquet":
            con.execute(f"CREATE TABLE {stem} AS SELECT * FROM read_parquet(?)", [str(path)])
        else:
            types = {name: columns.get(name, "VARCHAR") for name in _header(path)}
            con.execute(
                f"CREATE TABLE {stem} AS SELECT * FROM read_csv(?, header = true, columns = ?, "
                "auto_detect = false, ignore_errors = true)",
                [str(path), types],
            )
        rows[stem] = con.execute(f"SELECT count(*) FROM {stem}").fetchone()[0]
    return rows


def _export_path(input_dir: Path, stem: str) -> Path:
    names = (f"{stem}.parquet", f"{stem}.csv", f"{stem}.csv.gz")
    return next(path for path in (input_dir / name for name in names) if path.exists())


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as stream:
        return next(csv.reader(stream))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--types", type=Path, required=True, help="JSON written from column_types()")
    parser.add_argument("--time-zone", default="Asia/Shanghai")
    args = parser.parse_args(argv)
    print(read_night(args.input, json.loads(args.types.read_text()), args.time_zone))


if __name__ == "__main__":
    main()
