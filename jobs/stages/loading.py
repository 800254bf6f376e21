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
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow

from jobs.engine.engine import DuckDBEngine, scalar
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import literal, quoted
from jobs.engine.steps import step
from jobs.errors import first_line
from jobs.stages.schemas import EXPORTS, KIND_WORDS, SQL_TYPES, Export

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}
_CHUNK_BYTES = 1 << 24  # what each pass over a file's bytes reads at a time
# Errors reading a CSV's bytes (a truncated or corrupt .csv.gz among them): the file is unreadable.
_UNREADABLE = (OSError, EOFError, zlib.error, csv.Error)
_CR_STAND_IN = "\uf8ff"  # a private-use character: what `_records` hands the csv module for a bare CR


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
    # A plain CSV's traits, from the pass that hashed it (a .csv.gz's are read when it loads).
    csv_traits: _CsvTraits | None = field(default=None, repr=False, compare=False)


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
        found[stem] = ExportFile(export, path, _format_of(path), *_size_sha256_and_traits(path))
    return found


def _format_of(path: Path) -> str:
    return next(fmt for suffix, fmt in FORMATS.items() if path.name.endswith(suffix))


def _size_sha256_and_traits(path: Path) -> tuple[int, str, _CsvTraits | None]:
    """The file's size and sha256 and, for a plain CSV, its traits: one pass over its bytes.

    Each chunk is hashed on a second thread (hashlib lets go of the GIL) while this one scans
    it for the traits and reads the next: the pass takes the longer of the two, not their sum.
    """
    digest = hashlib.sha256()
    scan = _CsvTraitScan() if path.name.endswith(".csv") else None
    try:
        with path.open("rb") as stream, ThreadPoolExecutor(max_workers=1) as hasher:
            hashed = hasher.submit(lambda: None)
            while chunk := stream.read(_CHUNK_BYTES):
                hashed.result()  # chunks are hashed in order
                hashed = hasher.submit(digest.update, chunk)
                if scan:
                    scan.feed(chunk)
            hashed.result()
    except OSError as error:
        raise StructuralError(f"{path}: cannot read file ({error.strerror})") from None
    size = path.stat().st_size
    if size == 0:
        raise StructuralError(f"{path}: file is empty (expected a header row naming the columns)")
    return size, digest.hexdigest(), scan.traits() if scan else None


def load_export(con: duckdb.DuckDBPyConnection, file: ExportFile) -> LoadedExport:
    """Read one export into `typed_<stem>`; CSV rows that cannot be split go to `quarantine`."""
    source_columns = _source_columns(con, file)
    missing = [name for name in file.export.columns if name not in source_columns]
    if missing:
        raise StructuralError(
            f"{file.path}: missing required column '{missing[0]}' (expected columns: {', '.join(file.export.columns)})"
        )
    extra = tuple(name for name in source_columns if name not in file.export.columns)
    if file.format == "csv":
        unreadable = _read_csv(con, file, source_columns, extra)
    else:
        unreadable = 0
        select_list = typed_columns(file.export, source_columns, {name: name for name in extra})
        con.execute(
            f"CREATE OR REPLACE TABLE typed_{file.export.stem} AS SELECT _line, "
            f"{select_list} FROM ({_PARQUET_ROWS_WITH_LINES})",
            [str(file.path)],
        )
    rows = scalar(con, f"SELECT count(*) FROM typed_{file.export.stem}")
    return LoadedExport(file, rows + unreadable, extra)


_CSV_SCAN = (
    "read_csv(?, auto_detect = false, header = true, columns = ?, delim = ',', quote = '\"', "
    "escape = '\"', strict_mode = true, parallel = ?, {errors})"
)
_CSV_STORE_REJECTS = "store_rejects = true, rejects_table = 'csv_rejects', rejects_scan = 'csv_reject_scans'"
_CSV_ROWS_NUMBERED_BY_SCAN = "SELECT csv_row_lines._line, {rows}.* FROM {rows} POSITIONAL JOIN csv_row_lines"
_PARQUET_ROWS_WITH_LINES = "SELECT file_row_number + 1 AS _line, * FROM read_parquet(?, file_row_number = true)"
# Line ends after an empty last field: DuckDB drops empty fields at the end of a line.
_EMPTY_LAST_FIELD = (b",\n", b',""\n')
_EMPTY_LAST_FIELD_CRLF = (b",\r\n", b',""\r\n')


def _source_columns(con: duckdb.DuckDBPyConnection, file: ExportFile) -> dict[str, str]:
    """Column name -> DuckDB type of the file, or StructuralError if it cannot be read."""
    if file.format == "csv":
        return {name: "VARCHAR" for name in _csv_header(file.path)[0]}
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(file.path)]).fetchall()
    except duckdb.Error as error:
        raise StructuralError(f"{file.path}: cannot be read as a Parquet file ({first_line(error)})") from None
    return {name: type_name for name, type_name, *_ in described}


def _csv_header(path: Path) -> tuple[list[str], int]:
    """The header's column names and the lines it spans (RFC 4180, UTF-8, an optional byte-order mark)."""
    try:
        with _open_csv(path) as stream:
            lines, header = next(_records(stream), ([], []))
        b"".join(lines).decode("utf-8")
    except _UNREADABLE as error:
        raise StructuralError(f"{path}: cannot be read as CSV ({error})") from None
    except UnicodeDecodeError as error:
        raise StructuralError(f"{path}: the header row is not valid UTF-8 CSV ({error})") from None
    header = [name.removeprefix("\ufeff") if position == 0 else name for position, name in enumerate(header)]
    if not any(name.strip() for name in header):
        raise StructuralError(f"{path}: the first line is not a header row naming the columns")
    # An unnamed column (a trailing comma, say) is an extra column like any other.
    header = [name or f"column{position}" for position, name in enumerate(header, start=1)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise StructuralError(f"{path}: column '{repeated[0]}' appears more than once in the header")
    return header, len(lines)


def _open_csv(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")  # type: ignore[return-value]


def _read_csv(
    con: duckdb.DuckDBPyConnection, file: ExportFile, source_columns: dict[str, str], extra: tuple[str, ...]
) -> int:
    """Read the CSV in file order into `typed_<stem>`; return the count of rows that cannot be split.

    Rows that cannot be split into the header's columns go to `quarantine`: those DuckDB
    rejects, those it loads although they have more fields than the header (it drops empty
    fields at the end of a line), and those with a CR outside quotes. A file mixing LF and CRLF
    line ends, or with a bare CR, is read from a copy DuckDB's reader can take (`_readable_copy`).
    """
    header_lines = _csv_header(file.path)[1]
    columns = _scan_names(list(source_columns), file.export)
    extra_columns = {name: column for name, column in zip(source_columns, columns, strict=False) if name in extra}
    try:
        traits = file.csv_traits or _csv_traits(file.path)
        needs_copy = traits.mixed_line_ends or traits.bare_cr
        with tempfile.TemporaryDirectory(prefix="refund-recon-") if needs_copy else nullcontext() as folder:
            path, left_out = _readable_copy(file.path, Path(folder) / "records.csv") if folder else (file.path, [])
            parallel = _read_csv_rows(
                con, file, path, columns, typed_columns(file.export, source_columns, extra_columns)
            )
            numbered_by_position = _number_rows(con, path, traits, header_lines, columns, parallel)
    except _UNREADABLE as error:
        raise StructuralError(f"{file.path}: cannot be read as CSV ({error})") from None
    _reject_records(con, left_out)
    unreadable = scalar(con, "SELECT count(*) FROM csv_rejected_rows")
    rows, typed = f"csv_rows_{file.export.stem}", f"typed_{file.export.stem}"
    con.execute(f"ALTER TABLE csv_rows RENAME TO {rows}")
    by_position = f"SELECT CAST(rowid + {header_lines + 1} AS BIGINT) AS _line, * FROM {rows}"
    if numbered_by_position and not unreadable:  # the common file: its rows numbered in place, no copy
        con.execute(f"CREATE VIEW {typed} AS {by_position}")
    else:
        lines = by_position if numbered_by_position else _CSV_ROWS_NUMBERED_BY_SCAN.format(rows=rows)
        con.execute(
            f"CREATE TABLE {typed} AS SELECT * FROM ({lines}) WHERE _line NOT IN (SELECT line FROM csv_rejected_rows)"
        )
        con.execute(f"DROP TABLE {rows}; DROP TABLE IF EXISTS csv_row_lines")
    con.execute(
        "INSERT INTO quarantine SELECT ?, line, column_name, 'csv_row', csv_line, message FROM csv_rejected_rows",
        [file.export.stem],
    )
    con.execute("DROP TABLE csv_rejected_rows")
    return unreadable


def _scan_names(header: list[str], export: Export) -> list[str]:
    """The names the CSV scan gives the header's columns: their own, except an extra column's
    whose name differs from an earlier or a SPEC column's only by case (DuckDB's names ignore
    case): that one is named by its position."""
    taken = {name.lower() for name in header if name in export.columns}
    names = []
    for position, name in enumerate(header, start=1):
        if name not in export.columns:
            name = f"_extra_column_{position}" if name.lower() in taken else name
            taken.add(name.lower())
        names.append(name)
    return names


def _read_csv_rows(con, file: ExportFile, path: Path, columns: list[str], select_list: str) -> bool:
    """`csv_rows` (the typed columns of the rows DuckDB's reader splits, in file order, without
    their lines) and `csv_rejected_rows`; return whether the file was read in parallel.

    The text is cast in the same statement that reads it: no copy of the file as text is kept.
    The table keeps file order (loading preserves insertion order), so a row's `rowid` is its
    position: the common file numbers its lines from it (`_read_csv`). Numbering in this
    statement (`row_number() OVER ()`) would run it on one thread.
    After a record over the reader's max_line_size (2,000,000 bytes), DuckDB's parallel
    reader can resume inside a quoted field and lose the records that follow; such a file
    is read again on one thread, which skips the record whole.
    """
    scan = _CSV_SCAN.format(errors=_CSV_STORE_REJECTS)
    for parallel in (True, False):
        con.execute("DROP TABLE IF EXISTS csv_rejects; DROP TABLE IF EXISTS csv_reject_scans")
        try:
            con.execute(
                f"CREATE OR REPLACE TABLE csv_rows AS SELECT {select_list} FROM {scan}",
                [str(path), {name: "VARCHAR" for name in columns}, parallel],
            )
        except duckdb.Error as error:
            raise StructuralError(f"{file.path}: cannot be read as CSV ({first_line(error)})") from None
        over_long = con.execute(
            "SELECT count(*) FROM csv_rejects WHERE error_type = 'LINE SIZE OVER MAXIMUM'"
        ).fetchone()[0]
        if not over_long:
            break
    Runner(DuckDBEngine(con), {}, provided=("csv_rejects",)).run((step("staging/csv_rejected_rows"),))
    con.execute("DROP TABLE csv_rejects; DROP TABLE csv_reject_scans")
    return parallel


def _number_rows(con, path: Path, traits: _CsvTraits, header_lines: int, columns: list[str], parallel: bool) -> bool:
    """Whether `csv_rows` are numbered by position; records with too many fields join `csv_rejected_rows`.

    The common file (no rejected record, no newline inside a field, so one line per row, and
    no blank line, which the reader skips) numbers its rows by position: return True. Any other
    finds the line where each record starts (`csv_row_lines`): from its blank lines if it has
    no quote and no bare CR (one line per record), else by scanning its records once more.
    """
    rejected = {line for (line,) in con.execute("SELECT reader_line FROM csv_rejected_rows").fetchall()}
    rows = con.execute("SELECT count(*) FROM csv_rows").fetchone()[0]
    width = len(columns)
    one_row_per_line = not (
        rejected
        or traits.lines > header_lines + rows
        or (traits.bare_cr and _has_a_field_with_a_newline(con, path, columns, parallel))
    )
    if one_row_per_line:
        if traits.empty_last_field:
            _reject_split_badly(con, _lines_with_extra_fields(path, header_lines, width), width)
        return True
    if not _number_one_line_records(con, path, traits, header_lines, rejected, rows, width):
        _number_lines_by_scanning(con, path, rejected, width)
    return False


def _number_one_line_records(
    con, path: Path, traits: _CsvTraits, header_lines: int, rejected: set[int], rows: int, width: int
) -> bool:
    """Number the rows of a file whose records are one line each: one without a quote or a bare CR.

    The rows take, in order, the lines after the header that are neither blank nor rejected
    (DuckDB numbers a rejected row by its line here). Return False for any other file, or if
    those lines are not one per row, for the file to be scanned instead.
    """
    if traits.quotes or traits.bare_cr:
        return False
    skipped = sorted(rejected.union(_blank_lines(path, header_lines)))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE csv_row_lines AS SELECT range AS _line FROM range(?, ?)",
        [header_lines + 1, traits.lines + 1],
    )
    con.execute("DELETE FROM csv_row_lines WHERE _line IN (SELECT unnest(?::BIGINT[]))", [skipped])
    if con.execute("SELECT count(*) FROM csv_row_lines").fetchone()[0] != rows:
        return False
    if traits.empty_last_field:
        extra = (record for record in _lines_with_extra_fields(path, header_lines, width) if record[0] not in rejected)
        _reject_split_badly(con, extra, width)
    return True


def _blank_lines(path: Path, header_lines: int) -> list[int]:
    """The numbers of the empty lines after the header."""
    with _open_csv(path) as stream:
        return [line for line, raw in enumerate(stream, start=1) if line > header_lines and raw in (b"\n", b"\r\n")]


def _has_a_field_with_a_newline(con, path: Path, columns: list[str], parallel: bool) -> bool:
    """Whether a row the reader splits holds a newline in a field (the file is read again as text).

    Only a file with a bare CR needs asking: elsewhere rows end only at a newline, so a row
    with a newline inside spans two lines and the file has more lines than header and rows.
    """
    has_newline = " OR ".join(f"contains({quoted(column)}, chr(10))" for column in columns)
    scan = _CSV_SCAN.format(errors="ignore_errors = true")
    return (
        con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {scan} WHERE {has_newline} LIMIT 1)",
            [str(path), {name: "VARCHAR" for name in columns}, parallel],
        ).fetchone()[0]
        > 0
    )


@dataclass(frozen=True)
class _CsvTraits:
    """What in a CSV's bytes DuckDB's reader handles in a way the loader must make up for."""

    lines: int  # ended by LF; more than the header's plus one per row if any is blank
    empty_last_field: bool  # a line ending in an empty field: DuckDB drops it, even if one too many
    mixed_line_ends: bool  # LF and CRLF: the reader refuses the file or splits its rows wrongly
    bare_cr: bool  # a CR not before LF: the reader may end a row there
    quotes: bool  # a quote: a record may span lines


class _CsvTraitScan:
    """Gathers a CSV's `_CsvTraits` from its bytes, fed in order, at C speed (counts and substring searches)."""

    def __init__(self) -> None:
        self.lf = self.cr = self.crlf = 0
        self.empty_last = self.quotes = False
        self.tail = b""  # the last bytes fed: a line end may straddle two chunks

    def feed(self, chunk: bytes) -> None:
        seam = self.tail + chunk[:4]  # the bytes either side of where the previous chunk ended
        self.lf += chunk.count(b"\n")
        if b"\r" in chunk:
            self.cr += chunk.count(b"\r")
            self.crlf += chunk.count(b"\r\n")
        self.crlf += self.tail.endswith(b"\r") and chunk.startswith(b"\n")
        self.quotes = self.quotes or b'"' in chunk
        self.empty_last = self.empty_last or any(map(_ends_a_line_with_an_empty_field, (seam, chunk)))
        self.tail = (self.tail + chunk[-4:])[-4:]

    def traits(self) -> _CsvTraits:
        empty_last = self.empty_last or self.tail.endswith((b",", b',""'))  # the last line, without a line end
        lines = self.lf + (not self.tail.endswith(b"\n"))
        return _CsvTraits(lines, empty_last, 0 < self.crlf < self.lf, self.cr > self.crlf, self.quotes)


def _ends_a_line_with_an_empty_field(data: bytes) -> bool:
    """Whether a line in `data` ends in an empty field (`,` or `,""` before its LF or CRLF).

    The endings with a CR or a quote are looked for only where there is one (found at memchr speed).
    """
    return (
        b",\n" in data
        or (b"\r" in data and b",\r\n" in data)
        or (b'"' in data and (b',""\n' in data or b',""\r\n' in data))
    )


def _csv_traits(path: Path) -> _CsvTraits:
    """The traits of a CSV (a .csv.gz: decompressed), from one pass over its bytes."""
    scan = _CsvTraitScan()
    with _open_csv(path) as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            scan.feed(chunk)
    return scan.traits()


_CR_OUTSIDE_QUOTES = "row cannot be split into the header's columns: a carriage return (CR) outside quotes"


def _readable_copy(path: Path, copy: Path) -> tuple[Path, list[tuple[int, list[bytes], str]]]:
    """A copy of the CSV that DuckDB's reader takes whole, and the records left out of it.

    Every record ends with LF (the reader takes one line end for a whole file; newlines inside
    quoted fields are kept). A data record with a CR outside quotes, which RFC 4180 forbids and
    the reader refuses the whole file for, is left out as (its line, its raw lines, why); blank
    lines stand in for it, so that every line keeps its number.
    """
    left_out = []
    line = 1
    with _open_csv(path) as stream, copy.open("wb") as out:
        for number, (lines, _fields) in enumerate(_records(stream)):
            start, line = line, line + len(lines)
            if number and _has_a_cr_outside_quotes(b"".join(lines)):
                left_out.append((start, lines, _CR_OUTSIDE_QUOTES))
                lines = [b"\n" for raw in lines if raw.endswith(b"\n")]
            elif lines[-1].endswith(b"\r\n"):
                lines[-1] = lines[-1][:-2] + b"\n"
            out.writelines(lines)
    return copy, left_out


def _has_a_cr_outside_quotes(record: bytes) -> bool:
    """Whether a record holds a CR outside its quoted fields, other than before its final LF.

    Fields are read as Python's csv module reads them: a quote opens a quoted field only at a
    field's start, and a doubled quote inside one stands for a quote.
    """
    if b"\r" not in record.removesuffix(b"\r\n"):
        return False
    in_quotes = closed = False
    field_start = True
    for _position, char in enumerate(record.removesuffix(b"\r\n").decode("utf-8", "replace")):
        if in_quotes:
            in_quotes = char != '"'
            closed = not in_quotes
            continue
        if char == "\r":
            return True
        in_quotes = char == '"' and (field_start or closed)
        field_start, closed = char == ",", False
    return False


def _records(stream: BinaryIO):
    """Each record of a binary CSV stream as (its raw lines, its fields), as an RFC 4180 reader splits them.

    Python's csv module splits the records (a quote opens a quoted field only at a field's
    start); a line is what ends with b"\\n", as in DuckDB. A blank line is a record with no fields.
    A CR not before a line's LF is data here (the csv module would end a record there): it is
    handed to the module as a stand-in character and given back in the fields.
    """
    consumed = []

    def decoded():
        for line in stream:
            consumed.append(line)
            text = line.decode("utf-8", "replace")
            if "\r" in text:
                body, end = (text[:-2], "\r\n") if text.endswith("\r\n") else (text, "")
                text = body.replace("\r", _CR_STAND_IN) + end
            yield text

    csv.field_size_limit(1 << 30)
    for fields in csv.reader(decoded()):
        lines, consumed = consumed, []
        yield lines, [field.replace(_CR_STAND_IN, "\r") for field in fields]


def _number_lines_by_scanning(con, path: Path, rejected_reader_lines: set[int], width: int) -> None:
    """Find the line where each record starts with a quote-aware scan of the file.

    DuckDB numbers its rejected rows by "reader line", which counts blank lines but not the
    newlines inside quoted fields: the record's number here, header = 1. With both numbers for
    each record the scan tells the rejected records from the loaded ones, which keep file
    order. A loaded record whose field count is not the header's is rejected here.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE csv_row_lines (_line BIGINT)")
    reader_to_line = {}
    batch, split_badly = [], []
    line = 1
    with _open_csv(path) as stream:
        for reader_line, (lines, fields) in enumerate(_records(stream), start=1):
            if reader_line in rejected_reader_lines:
                reader_to_line[reader_line] = line
            elif reader_line > 1 and fields:
                batch.append(line)
                if len(fields) != width:
                    split_badly.append((line, lines, len(fields)))
            line += len(lines)
            if len(batch) == 1 << 20:
                _append_lines(con, batch)
                batch = []
    _append_lines(con, batch)
    for reader_line, line in reader_to_line.items():
        con.execute("UPDATE csv_rejected_rows SET line = ? WHERE reader_line = ?", [line, reader_line])
    _reject_split_badly(con, split_badly, width)


def _lines_with_extra_fields(path: Path, header_lines: int, width: int):
    """(line, [raw line], fields) of each line ending in an empty field that has more fields than the header.

    Only for a file whose data records are one line each.
    """
    endings = _EMPTY_LAST_FIELD + _EMPTY_LAST_FIELD_CRLF + (b",", b',""')  # the last two: the file's end
    with _open_csv(path) as stream:
        for line, raw in enumerate(stream, start=1):
            if line > header_lines and raw.endswith(endings):
                fields = (
                    raw.count(b",") + 1 if b'"' not in raw else len(next(csv.reader([raw.decode("utf-8", "replace")])))
                )
                if fields > width:
                    yield line, [raw], fields


def _reject_split_badly(con, records, width: int) -> None:
    """Add records that DuckDB loaded with the wrong number of fields to `csv_rejected_rows`."""
    _reject_records(
        con,
        [
            (line, lines, f"row cannot be split into the header's columns: {fields} fields, the header has {width}")
            for line, lines, fields in records
        ],
    )


def _reject_records(con, records: list[tuple[int, list[bytes], str]]) -> None:
    """Add (line, raw lines, message) records to `csv_rejected_rows`."""
    rows = [
        [line, b"".join(lines).decode("utf-8", "replace").rstrip("\r\n"), message] for line, lines, message in records
    ]
    if rows:
        con.executemany("INSERT INTO csv_rejected_rows VALUES (NULL, ?, NULL, ?, ?)", rows)


def _append_lines(con, lines: list[int]) -> None:
    if lines:
        con.from_arrow(pyarrow.table({"_line": pyarrow.array(lines, type=pyarrow.int64())})).insert_into(
            "csv_row_lines"
        )


def typed_columns(export: Export, source_columns: dict[str, str], extra: dict[str, str]) -> str:
    """The select list of `typed_<stem>` after `_line`: SPEC columns cast to their types, extra
    columns kept as text in one map `_extra_columns` (a name may differ from a SPEC column's only
    by case, which DuckDB's column names cannot), and `_bad_types`, the values that did not
    parse, with the column and what was expected. `extra` maps each extra column's name to the
    column of the source holding it."""
    typed, bad = [], []
    for name, kind in export.columns.items():
        raw, source_type = quoted(name), source_columns[name]
        expression = _typed_expression(raw, kind, source_type)
        typed.append(f"{expression} AS {raw}")
        if kind != "text" or not _is_text_like(source_type):
            text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
            bad.append(
                f"CASE WHEN {text} IS NOT NULL AND {expression} IS NULL "
                f"THEN {{'column': '{name}', 'value': {text}, 'expected': '{KIND_WORDS[kind]}'}} END"
            )
    kept = (
        f"map([{', '.join(literal(name) for name in extra)}], "
        f"[{', '.join(f'CAST({quoted(column)} AS VARCHAR)' for column in extra.values())}]::VARCHAR[])"
        if extra
        else "NULL::MAP(VARCHAR, VARCHAR)"
    )
    return (
        f"{', '.join(typed)}, {kept} AS _extra_columns, "
        f"list_filter([{', '.join(bad) or 'NULL'}], lambda x: x IS NOT NULL) AS _bad_types"
    )


# Parquet types by how they are read (DuckDB's names, from DESCRIBE).
_INTEGER_TYPES = (
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "UHUGEINT",
)
_FLOAT_TYPES = ("DOUBLE", "FLOAT")
_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP WITH TIME ZONE")
_SCALES = {"int": 0, "money": 2, "minutes": 6}
# What a value of each kind must look like as text (after trimming) before it is cast.
_NUMBER_PATTERNS = {
    "int": r"[+-]?[0-9]+",
    "money": r"[+-]?[0-9]+(\.[0-9]{1,2})?",
    "minutes": r"[+-]?[0-9]+(\.[0-9]{1,6})?",
}
# A float's shortest decimal text, as DuckDB (and Python's repr) prints it: 809.1, 1e-05, 1.5e+17;
# or as Spark (Java) prints it: 1.0E-5, 1.5E17.
_FLOAT_TEXT = r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"
# ISO 8601: date, 'T' or a space, hh:mm[:ss[.fraction]], then Z, +hh:mm, +hhmm, +hh or nothing.
_ISO_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?"
)
# Instants a timestamp may be: a day inside years 1-9999 in any zone (no infinity, nothing Python
# cannot hold); for text, whose year has 4 digits, the dates it must not start with say the same.
_INSTANTS = "BETWEEN TIMESTAMPTZ '0001-01-02 00:00:00+00' AND TIMESTAMPTZ '9999-12-31 00:00:00+00'"
_EDGE_DATES = ("0000", "0001-01-01", "9999-12-31")


def _is_text_like(source_type: str) -> bool:
    """Whether a column of this type reads as text: text itself, or whole numbers (ids)."""
    return source_type == "VARCHAR" or source_type in _INTEGER_TYPES


def _typed_expression(raw: str, kind: str, source_type: str) -> str:
    """SQL turning a source column into its SPEC type; NULL where the value does not parse.

    A column of a type that cannot hold the kind (a BLOB, STRUCT, MAP, LIST, BOOLEAN...) gives
    NULL on every row: each value is a type error.
    """
    if kind == "text":
        if source_type == "VARCHAR":
            return f"NULLIF({raw}, '')"
        return f"CAST({raw} AS VARCHAR)" if _is_text_like(source_type) else "NULL::VARCHAR"
    if kind == "timestamp":
        return _timestamp_expression(raw, source_type)
    target, scale = SQL_TYPES[kind], _SCALES[kind]
    if source_type == "VARCHAR":
        text = f"trim({raw})"
        return f"CASE WHEN {_matches(text, _NUMBER_PATTERNS[kind])} THEN TRY_CAST({text} AS {target}) END"
    if source_type in _INTEGER_TYPES or source_type == target:
        return f"TRY_CAST({raw} AS {target})"
    if source_type.startswith("DECIMAL"):
        return f"CASE WHEN {raw} = round({raw}, {scale}) THEN TRY_CAST({raw} AS {target}) END"
    if source_type in _FLOAT_TYPES:
        return _float_expression(raw, scale, target)
    return f"NULL::{target}"


def _matches(text: str, pattern: str) -> str:
    """SQL: the whole of `text` matches `pattern` (anchored regexp_matches: twice as fast as
    regexp_full_match in DuckDB 2.0)."""
    return f"regexp_matches({text}, '^(?:{pattern})$')"


def _float_expression(raw: str, scale: int, target: str) -> str:
    """A float stands for its shortest decimal text (SPEC 2): that text, if it has at most `scale`
    decimals once its exponent is applied, cast exactly; NaN and infinities never match."""
    text = f"CAST({raw} AS VARCHAR)"
    decimals = (
        f"length(rtrim(regexp_extract({text}, '\\.([0-9]+)', 1), '0')) "
        f"- coalesce(TRY_CAST(regexp_extract({text}, '[eE]([+-]?[0-9]+)$', 1) AS INTEGER), 0)"
    )
    return (
        f"CASE WHEN {_matches(text, _FLOAT_TEXT)} AND {decimals} <= {scale} "
        f"THEN TRY_CAST(TRY_CAST({text} AS DECIMAL(38,{scale})) AS {target}) END"
    )


def _timestamp_expression(raw: str, source_type: str) -> str:
    """SQL for an instant: ISO 8601 text, or a Parquet timestamp of any unit, kept to the
    microsecond (finer parts are cut, never rounded up into the next second or day).

    Naive values (text without offset, Parquet TIMESTAMP without zone) are read in the session
    time zone, which the pipeline sets to the billing time zone.
    """
    if source_type == "VARCHAR":  # the hot path of every CSV: the value is cast once
        text = f"trim({raw})"
        edges = " OR ".join(f"starts_with({text}, '{date}')" for date in _EDGE_DATES)
        return f"CASE WHEN {_matches(text, _ISO_TIMESTAMP)} AND NOT ({edges}) THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
    if source_type in _TIMESTAMP_TYPES:
        instant = f"CAST({raw} AS TIMESTAMPTZ)"
    elif source_type == "TIMESTAMP_NS":
        instant = f"CAST(make_timestamp({_microseconds(f'epoch_ns({raw})')}) AS TIMESTAMPTZ)"
    elif source_type == "TIMESTAMPTZ_NS":
        instant = f"timezone('UTC', make_timestamp({_microseconds(f'epoch_ns({raw})')}))"
    else:
        return "NULL::TIMESTAMPTZ"
    return f"CASE WHEN {instant} {_INSTANTS} THEN {instant} END"


def _microseconds(nanoseconds: str) -> str:
    """SQL: whole microseconds in `nanoseconds`, rounded down (also before 1970)."""
    return f"(({nanoseconds}) - ((({nanoseconds}) % 1000) + 1000) % 1000) // 1000"
