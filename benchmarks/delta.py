"""The nightly delta of issue #5: one day of new records onto a year of history.

`split_night` cuts a generated night at as_of into two deliveries:
  history/  what the night before held: every row with a date before as_of (or no readable
            date), delivered at as_of - 1;
  delta/    what as_of adds: every row with a date on as_of (purchases made, minutes used and
            statuses changed that day, refunds requested or processed that day).
Rows dated only after as_of are in neither; a full run at as_of sets them aside anyway, so the
delta night must flag exactly what a full rebuild flags. A refund requested before as_of and
processed on it is in both, as a real export would show it on both nights. Rows the CSV
reader cannot split into columns are dropped by the split (a few planted bad rows).

    python -m benchmarks.delta --input DIR --as-of 2026-03-31 --out DIR
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import duckdb

from jobs.config import Settings
from jobs.engine.sqlfiles import quoted
from jobs.stages.loading import find_exports
from jobs.stages.schemas import EXPORTS

BILLING_TIME_ZONE = Settings().billing_time_zone  # the generator writes billing times of the default zone


def split_night(night: Path, as_of: date, out: Path) -> dict[str, dict[str, int]]:
    """Write out/history and out/delta; {"history"|"delta": {stem: rows}}."""
    rows: dict[str, dict[str, int]] = {"history": {}, "delta": {}}
    with duckdb.connect() as con:
        con.execute("SET TimeZone = ?", [BILLING_TIME_ZONE])
        con.execute("SET enable_progress_bar = false")
        for stem, export_file in find_exports(night).items():
            source = _rows_of(export_file.path, export_file.format)
            days = ", ".join(
                f"TRY_CAST({quoted(column)} AS TIMESTAMPTZ)::DATE"
                for column, kind in EXPORTS[stem].columns.items()
                if kind == "timestamp"
            )
            for part, keeps in (
                ("history", f"coalesce(least({days}) < ?, true)"),
                ("delta", f"list_contains([{days}], ?)"),
            ):
                target = out / part / f"{stem}.{export_file.format}"
                target.parent.mkdir(parents=True, exist_ok=True)
                rows[part][stem] = con.execute(
                    f"COPY (SELECT * FROM {source} WHERE {keeps}) TO ? ({_copy_options(export_file.format)})",
                    [str(export_file.path), as_of, str(target)],
                ).fetchone()[0]
    return rows


def history_as_of(as_of: date) -> date:
    """The night the history delivery is run for: the day before as_of."""
    return as_of - timedelta(days=1)


def _rows_of(path: Path, file_format: str) -> str:
    """A table function over the export (its path is the query's first parameter), every column as it was."""
    if file_format == "parquet":
        return "read_parquet(?)"
    return "read_csv(?, header = true, all_varchar = true, ignore_errors = true)"


def _copy_options(file_format: str) -> str:
    return "FORMAT parquet" if file_format == "parquet" else "FORMAT csv, HEADER true"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="a generated night")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True, help="gets history/ and delta/")
    args = parser.parse_args(argv)
    for part, counts in split_night(args.input, args.as_of, args.out).items():
        print(part, counts)


if __name__ == "__main__":
    main()
