"""Loading: find the four exports, refuse structural errors, read rows into DuckDB typed.

For each export this module leaves a table `typed_<stem>` holding every row the file
gave, with the SPEC's types, the row's `_line` (CSV: the line on which the row starts,
header = 1; Parquet: the 1-based row number) and `_bad_types`, the values that would not
parse. Rows the CSV reader itself could not split into columns go straight to the
`quarantine` table. Nothing here judges a row's values: that is validation's job.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .schemas import EXPORTS, SQL_TYPES, Export
from .sqlfiles import read_sql as _sql_text

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}

# A value of each kind must look like this (after trimming) before it is cast.
_PATTERNS = {
    "int": r"[+-]?[0-9]+",
    "money": r"[+-]?[0-9]+(\.[0-9]{1,2})?",
    "minutes": r"[+-]?[0-9]+(\.[0-9]{1,6})?",
}


class StructuralError(Exception):
    """An export the run cannot read at all; the message names file and expectation."""


@dataclass(frozen=True)
class ExportFile:
    """One export file found in the input folder."""

    export: Export
    path: Path
    format: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class LoadedExport:
    """What loading learnt about one file."""

    file: ExportFile
    rows_read: int
    extra_columns: tuple[str, ...]


def find_exports(input_dir: Path) -> dict[str, ExportFile]:
    """Locate each export by stem, or raise StructuralError for the first problem."""
    if not input_dir.is_dir():
        raise StructuralError(f"{input_dir}: input folder not found")
    found = {}
    for stem, export in EXPORTS.items():
        candidates = [input_dir / f"{stem}{suffix}" for suffix in FORMATS]
        present = [path for path in candidates if path.exists()]
        if not present:
            names = ", ".join(path.name for path in candidates)
            raise StructuralError(f"{input_dir}: missing export '{stem}' (expected one of {names})")
        if len(present) > 1:
            names = " and ".join(path.name for path in present)
            raise StructuralError(f"{input_dir}: export '{stem}' is given twice ({names}); keep one")
        path = present[0]
        found[stem] = ExportFile(export, path, _format_of(path), *_size_and_sha256(path))
    return found


def _format_of(path: Path) -> str:
    return next(fmt for suffix, fmt in FORMATS.items() if path.name.endswith(suffix))


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as error:
        raise StructuralError(f"{path}: cannot read file ({error.strerror})") from None
    size = path.stat().st_size
    if size == 0:
        raise StructuralError(f"{path}: file is empty (expected a header row naming the columns)")
    return size, digest.hexdigest()


def load_export(con: duckdb.DuckDBPyConnection, file: ExportFile) -> LoadedExport:
    """Read one export into `typed_<stem>`; CSV rows that cannot be split go to `quarantine`."""
    source_columns = _source_columns(con, file)
    missing = [name for name in file.export.columns if name not in source_columns]
    if missing:
        raise StructuralError(
            f"{file.path}: missing required column '{missing[0]}' "
            f"(expected columns: {', '.join(file.export.columns)})"
        )
    extra = tuple(name for name in source_columns if name not in file.export.columns)
    if file.format == "csv":
        unreadable = _read_csv(con, file, list(source_columns))
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW source_rows AS "
                    "SELECT file_row_number + 1 AS _line, * FROM read_parquet(?, file_row_number = true)",
                    [str(file.path)])
        unreadable = 0
    _create_typed_table(con, file.export, source_columns, extra)
    con.execute("DROP VIEW IF EXISTS source_rows")
    con.execute("DROP TABLE IF EXISTS raw_rows")
    rows = con.execute(f"SELECT count(*) FROM typed_{file.export.stem}").fetchone()[0]
    return LoadedExport(file, rows + unreadable, extra)


_CSV_SCAN = ("SELECT * FROM read_csv(?, auto_detect = false, header = true, columns = ?, delim = ',', "
             "quote = '\"', escape = '\"', strict_mode = true, store_rejects = true, "
             "rejects_table = 'csv_rejects', rejects_scan = 'csv_reject_scans')")


def _source_columns(con: duckdb.DuckDBPyConnection, file: ExportFile) -> dict[str, str]:
    """Column name -> DuckDB type of the file, or StructuralError if it cannot be read."""
    if file.format == "csv":
        return {name: "VARCHAR" for name in _csv_header(file.path)}
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(file.path)]).fetchall()
    except duckdb.Error as error:
        raise StructuralError(f"{file.path}: cannot be read as a Parquet file ({_first_line(error)})") from None
    return {name: type_name for name, type_name, *_ in described}


def _csv_header(path: Path) -> list[str]:
    """The header row's column names (RFC 4180, UTF-8, an optional byte-order mark)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as stream:
            header = next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as error:
        raise StructuralError(f"{path}: cannot read the CSV header row ({error})") from None
    if not any(name.strip() for name in header):
        raise StructuralError(f"{path}: the first line is not a header row naming the columns")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise StructuralError(f"{path}: column '{repeated[0]}' appears more than once in the header")
    return header


def _read_csv(con: duckdb.DuckDBPyConnection, file: ExportFile, columns: list[str]) -> int:
    """Materialise the CSV in file order as `source_rows` with `_line`; quarantine unsplittable rows.

    DuckDB keeps file order in `rowid` and numbers rejected rows by record, not by line, so
    a row's line is its record number plus the newlines embedded in the records before it.
    Returns the number of rejected rows.
    """
    con.execute("DROP TABLE IF EXISTS csv_rejects; DROP TABLE IF EXISTS csv_reject_scans")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_rows AS {_CSV_SCAN}",
                    [str(file.path), {name: "VARCHAR" for name in columns}])
    except duckdb.Error as error:
        raise StructuralError(f"{file.path}: cannot be read as CSV ({_first_line(error)})") from None
    quoted = [_quoted(column) for column in columns]
    newlines = " + ".join(f"coalesce(length({c}) - length(replace({c}, chr(10), '')), 0)" for c in quoted)
    has_newline = " OR ".join(f"contains({c}, chr(10))" for c in quoted)
    con.execute(f"CREATE OR REPLACE TEMP TABLE multiline_rows AS "
                f"SELECT rowid AS _row, {newlines} AS newlines FROM raw_rows WHERE {has_newline}")
    con.execute(_sql_text("staging/csv_line_numbers.sql"))
    shifted = con.execute("SELECT count(*) FROM line_shifts").fetchone()[0] > 0
    line = "CAST(r.rowid + 2 + coalesce(s.shift, 0) AS BIGINT)" if shifted else "CAST(r.rowid + 2 AS BIGINT)"
    join = " ASOF LEFT JOIN line_shifts AS s ON r.rowid >= s.from_row" if shifted else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW source_rows AS SELECT {line} AS _line, r.* FROM raw_rows AS r{join}")
    con.execute("INSERT INTO quarantine SELECT ?, line, column_name, 'csv_row', csv_line, message "
                "FROM csv_rejected_rows", [file.export.stem])
    return con.execute("SELECT count(*) FROM csv_rejected_rows").fetchone()[0]


def _create_typed_table(con, export: Export, source_columns: dict[str, str], extra: tuple[str, ...]) -> None:
    """`typed_<stem>`: SPEC columns cast to their types, extra columns kept as text."""
    typed, bad = [], []
    for name, kind in export.columns.items():
        raw = _quoted(name)
        expression = _typed_expression(raw, kind, source_columns[name])
        typed.append(f"{expression} AS {raw}")
        if kind != "text":
            text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
            bad.append(f"CASE WHEN {text} IS NOT NULL AND {expression} IS NULL "
                       f"THEN {{'column': '{name}', 'value': {text}}} END")
    kept = [f"CAST({_quoted(name)} AS VARCHAR) AS {_quoted(name)}" for name in extra]
    con.execute(
        f"CREATE OR REPLACE TABLE typed_{export.stem} AS SELECT _line, {', '.join(typed + kept)}, "
        f"list_filter([{', '.join(bad) or 'NULL'}], lambda x: x IS NOT NULL) AS _bad_types "
        f"FROM source_rows"
    )


def _typed_expression(raw: str, kind: str, source_type: str) -> str:
    """SQL turning a source column into its SPEC type; NULL where the value does not parse."""
    target = SQL_TYPES[kind]
    if kind == "text":
        return f"NULLIF(CAST({raw} AS VARCHAR), '')"
    if kind == "timestamp":
        # Naive values (text without offset, Parquet TIMESTAMP) are read in the session
        # time zone, which the pipeline sets to the billing time zone.
        if source_type == "VARCHAR":
            return f"TRY_CAST(trim({raw}) AS TIMESTAMPTZ)"
        return f"TRY_CAST({raw} AS TIMESTAMPTZ)"
    if source_type == target or (kind == "int" and source_type in ("INTEGER", "SMALLINT", "TINYINT")):
        return f"CAST({raw} AS {target})"
    text = f"trim(CAST({raw} AS VARCHAR))"
    return f"CASE WHEN regexp_full_match({text}, '{_PATTERNS[kind]}') THEN TRY_CAST({text} AS {target}) END"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
