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
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow

from .errors import first_line
from .schemas import EXPORTS, KIND_WORDS, SQL_TYPES, Export
from .sqlfiles import read_sql

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}

# A value of each kind must look like this (after trimming) before it is cast.
_PATTERNS = {
    "int": r"[+-]?[0-9]+",
    "money": r"[+-]?[0-9]+(\.[0-9]{1,2})?",
    "minutes": r"[+-]?[0-9]+(\.[0-9]{1,6})?",
}


_SCALES = {"int": 0, "money": 2, "minutes": 6}
_INTEGER_TYPES = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


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
        unreadable, source = _read_csv(con, file, list(source_columns))
        parameters = []
    else:
        unreadable = 0
        source, parameters = _PARQUET_ROWS_WITH_LINES, [str(file.path)]
    _create_typed_table(con, file.export, source_columns, extra, source, parameters)
    con.execute("DROP TABLE IF EXISTS raw_rows; DROP TABLE IF EXISTS raw_row_lines")
    rows = con.execute(f"SELECT count(*) FROM typed_{file.export.stem}").fetchone()[0]
    return LoadedExport(file, rows + unreadable, extra)


_CSV_SCAN = ("SELECT * FROM read_csv(?, auto_detect = false, header = true, columns = ?, delim = ',', "
             "quote = '\"', escape = '\"', strict_mode = true, store_rejects = true, "
             "rejects_table = 'csv_rejects', rejects_scan = 'csv_reject_scans')")
_CSV_ROWS_NUMBERED_BY_POSITION = "SELECT CAST(rowid + 2 AS BIGINT) AS _line, * FROM raw_rows"
_CSV_ROWS_NUMBERED_BY_SCAN = "SELECT raw_row_lines._line, raw_rows.* FROM raw_rows POSITIONAL JOIN raw_row_lines"
_PARQUET_ROWS_WITH_LINES = "SELECT file_row_number + 1 AS _line, * FROM read_parquet(?, file_row_number = true)"


def _source_columns(con: duckdb.DuckDBPyConnection, file: ExportFile) -> dict[str, str]:
    """Column name -> DuckDB type of the file, or StructuralError if it cannot be read."""
    if file.format == "csv":
        return {name: "VARCHAR" for name in _csv_header(file.path)}
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(file.path)]).fetchall()
    except duckdb.Error as error:
        raise StructuralError(f"{file.path}: cannot be read as a Parquet file ({first_line(error)})") from None
    return {name: type_name for name, type_name, *_ in described}


def _csv_header(path: Path) -> list[str]:
    """The header row's column names (RFC 4180, UTF-8, an optional byte-order mark)."""
    try:
        with _open_csv(path) as stream:
            header_line = stream.readline()
    except (OSError, EOFError) as error:
        raise StructuralError(f"{path}: cannot be read as CSV ({error})") from None
    try:
        header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise StructuralError(f"{path}: the header row is not valid UTF-8 CSV ({error})") from None
    if not any(name.strip() for name in header):
        raise StructuralError(f"{path}: the first line is not a header row naming the columns")
    # An unnamed column (a trailing comma, say) is an extra column like any other.
    header = [name or f"column{position}" for position, name in enumerate(header, start=1)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise StructuralError(f"{path}: column '{repeated[0]}' appears more than once in the header")
    return header


def _open_csv(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _read_csv(con: duckdb.DuckDBPyConnection, file: ExportFile, columns: list[str]) -> tuple[int, str]:
    """Read the CSV in file order into `raw_rows`; return the rejected row count and the rows' SQL.

    Rows the reader cannot split go to `quarantine`. The common file (no such rows, no
    newline inside a field, no blank line) numbers its rows by position; any other is
    scanned once more to find the line where each record starts (`raw_row_lines`).
    """
    con.execute("DROP TABLE IF EXISTS csv_rejects; DROP TABLE IF EXISTS csv_reject_scans")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_rows AS {_CSV_SCAN}",
                    [str(file.path), {name: "VARCHAR" for name in columns}])
    except duckdb.Error as error:
        raise StructuralError(f"{file.path}: cannot be read as CSV ({first_line(error)})") from None
    con.execute(read_sql("staging/csv_rejected_rows.sql"))
    rejected_reader_lines = {line for (line,) in con.execute("SELECT reader_line FROM csv_rejected_rows").fetchall()}
    has_newline = " OR ".join(f"contains({_quoted(column)}, chr(10))" for column in columns)
    multiline = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM raw_rows WHERE {has_newline} LIMIT 1)").fetchone()[0]
    source = _CSV_ROWS_NUMBERED_BY_POSITION
    if rejected_reader_lines or multiline or _has_blank_line(file.path):
        _number_lines_by_scanning(con, file.path, rejected_reader_lines)
        source = _CSV_ROWS_NUMBERED_BY_SCAN
    con.execute("INSERT INTO quarantine SELECT ?, line, column_name, 'csv_row', csv_line, message "
                "FROM csv_rejected_rows", [file.export.stem])
    return len(rejected_reader_lines), source


def _has_blank_line(path: Path) -> bool:
    """Whether an empty line follows the header anywhere (the reader skips those silently)."""
    tail = b""
    with _open_csv(path) as stream:
        while chunk := stream.read(1 << 24):
            window = tail + chunk
            if b"\n\n" in window or b"\n\r\n" in window:
                return True
            tail = window[-2:]
    return False


def _number_lines_by_scanning(con, path: Path, rejected_reader_lines: set[int]) -> None:
    """Find the line where each record starts with a quote-aware scan of the file.

    DuckDB numbers its rejected rows by "reader line": physical lines, less the newlines
    inside quoted fields. The scan computes both numbers for each record start, so it can
    tell the rejected records from the loaded ones, which keep file order.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE raw_row_lines (_line BIGINT)")
    reader_to_line = {}
    batch = []
    for line, reader_line in _record_starts(path):
        if reader_line in rejected_reader_lines:
            reader_to_line[reader_line] = line
            continue
        batch.append(line)
        if len(batch) == 1 << 20:
            _append_lines(con, batch)
            batch = []
    _append_lines(con, batch)
    for reader_line, line in reader_to_line.items():
        con.execute("UPDATE csv_rejected_rows SET line = ? WHERE reader_line = ?", [line, reader_line])


def _record_starts(path: Path):
    """(line, reader line) of each data record's first line, as an RFC 4180 reader sees them.

    Python's csv module splits the records (a quote opens a quoted field only at a field's
    start); the lines it has consumed before a record give that record's first line. Blank
    lines are not records, but DuckDB's reader line count includes them, as it does here.
    """
    lines_read = 0

    def counted(stream):
        nonlocal lines_read
        for text in stream:
            lines_read += 1
            yield text

    csv.field_size_limit(1 << 30)
    with _open_csv(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as stream:
        record_start = 1
        for reader_line, fields in enumerate(csv.reader(counted(stream)), start=1):
            if reader_line > 1 and fields:
                yield record_start, reader_line
            record_start = lines_read + 1


def _append_lines(con, lines: list[int]) -> None:
    if lines:
        batch = pyarrow.table({"_line": pyarrow.array(lines, type=pyarrow.int64())})
        con.execute("INSERT INTO raw_row_lines SELECT _line FROM batch")


def _create_typed_table(con, export: Export, source_columns: dict[str, str], extra: tuple[str, ...],
                        source: str, parameters: list) -> None:
    """`typed_<stem>`: SPEC columns cast to their types, extra columns kept as text.

    `_bad_types` lists the values that did not parse, with the column and what was expected.
    """
    typed, bad = [], []
    for name, kind in export.columns.items():
        raw = _quoted(name)
        expression = _typed_expression(raw, kind, source_columns[name])
        typed.append(f"{expression} AS {raw}")
        if kind != "text":
            text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
            bad.append(f"CASE WHEN {text} IS NOT NULL AND {expression} IS NULL "
                       f"THEN {{'column': '{name}', 'value': {text}, 'expected': '{KIND_WORDS[kind]}'}} END")
    kept = [f"CAST({_quoted(name)} AS VARCHAR) AS {_quoted(name)}" for name in extra]
    con.execute(
        f"CREATE OR REPLACE TABLE typed_{export.stem} AS SELECT _line, {', '.join(typed + kept)}, "
        f"list_filter([{', '.join(bad) or 'NULL'}], lambda x: x IS NOT NULL) AS _bad_types "
        f"FROM ({source})",
        parameters,
    )


def _typed_expression(raw: str, kind: str, source_type: str) -> str:
    """SQL turning a source column into its SPEC type; NULL where the value does not parse."""
    target = SQL_TYPES[kind]
    if kind == "text":
        return f"NULLIF(CAST({raw} AS VARCHAR), '')"
    if kind == "timestamp":
        # Naive values (text without offset, Parquet TIMESTAMP) are read in the session
        # time zone, which the pipeline sets to the billing time zone.
        value = f"trim({raw})" if source_type == "VARCHAR" else raw
        return f"TRY_CAST({value} AS TIMESTAMPTZ)"
    if source_type == target or (kind == "int" and source_type in _INTEGER_TYPES):
        return f"CAST({raw} AS {target})"
    if source_type in _FLOAT_TYPES or source_type.startswith("DECIMAL"):
        # A Parquet number: accepted when it has no more decimals than the kind allows.
        exact = f"TRY_CAST({raw} AS DECIMAL(38,10))"
        return f"CASE WHEN {exact} = round({exact}, {_SCALES[kind]}) THEN TRY_CAST({exact} AS {target}) END"
    text = f"trim(CAST({raw} AS VARCHAR))"
    return f"CASE WHEN regexp_full_match({text}, '{_PATTERNS[kind]}') THEN TRY_CAST({text} AS {target}) END"



def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
