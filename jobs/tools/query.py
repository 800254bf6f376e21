"""`refund-recon query "SQL"`: SELECT over the warehouse, and print the result (issues #6, #10).

Only SELECT (and EXPLAIN) statements run, on a connection DuckDB itself sandboxes
(`open_read_only`): the warehouse opened read-only, no access to any other file or URL
(`enable_external_access = false`: no COPY TO, EXPORT, ATTACH, read_csv, glob, http), no
extension installed or loaded, and the configuration locked so a statement cannot undo any
of it. A refused statement fails with one line and exit code 1. The session's TimeZone is the
billing time zone of the latest run, so `CAST(requested_at AS DATE)` is a billing day and
times print in billing time with their offset.

DuckDB locks the file: while a run holds the warehouse for writing (only during its publish
step) no reader can open it, and while a reader has it open the run cannot publish. The
command holds the file only for the time of the query; the Parquet exports are the way to
read while the job writes (docs/analysts.md).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from jobs.csvsafe import is_text_value, neutralise
from jobs.errors import first_line
from jobs.outputs.exports import csv_text, jsonable
from jobs.outputs.terminal import json_visible, visible

FORMATS = ("table", "csv", "json")
ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
# DuckDB's own sandbox: nothing outside the warehouse file, no extension fetched or loaded.
SANDBOX: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
READ_ONLY_NOTE = "refund-recon query only reads the warehouse: SELECT, no files, URLs or extensions"


class QueryError(Exception):
    """The query could not run; the message says why."""


def run_query(db_path: Path, sql: str) -> tuple[list[str], list[tuple]]:
    """Run `sql` (SELECT statements; the last one's result is returned) on the sandboxed warehouse."""
    con = open_read_only(db_path)
    try:
        _check_statements(sql)
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], []
        return [column[0] for column in cursor.description], cursor.fetchall()
    except duckdb.Error as error:
        raise QueryError(visible(f"query failed: {_explained(first_line(error))}")) from None
    finally:
        con.close()


def _check_statements(sql: str) -> None:
    """Refuse any statement that is not a SELECT (or EXPLAIN), before anything runs."""
    for statement in duckdb.extract_statements(sql):
        if statement.type not in ALLOWED_STATEMENTS:
            kind = statement.type.name.replace("_STATEMENT", "")
            raise QueryError(
                f"query failed: a {kind} statement is refused ({READ_ONLY_NOTE}; the warehouse is opened read-only)"
            )


def _explained(message: str) -> str:
    """DuckDB's message, saying why when the sandbox refused it."""
    if "read-only" in message or "read only" in message:
        return f"{message} (refund-recon query opens the warehouse read-only: it never writes)"
    if (
        "disabled by configuration" in message
        or "disabled through configuration" in message
        or "configuration has been locked" in message
    ):
        return f"{message} ({READ_ONLY_NOTE})"
    return message


def open_read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse opened read-only in DuckDB's sandbox (`SANDBOX`, configuration locked), its
    TimeZone set to the latest run's billing time zone. Every reader of `query` and `review` uses it."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise QueryError(f"{db_path}: no warehouse there (a run creates it: refund-recon run --db {db_path})")
    try:
        con = duckdb.connect(str(db_path), read_only=True, config=SANDBOX)
    except duckdb.Error as error:
        message = first_line(error)
        if "lock" in message.lower():
            raise QueryError(
                f"{db_path}: a run is writing the warehouse (DuckDB lets no reader open the file while its "
                f"writer holds it); try again when the run has finished, or read the Parquet exports in "
                f"{db_path.parent / 'exports' / 'parquet'}"
            ) from None
        raise QueryError(f"{db_path}: cannot open the warehouse read-only ({message})") from None
    try:
        zone = con.execute("SELECT billing_time_zone FROM runs ORDER BY finished_at DESC LIMIT 1").fetchone()
        if zone:
            con.execute("SET TimeZone = ?", [zone[0]])
    except duckdb.Error:
        pass  # not a refund-recon warehouse (no runs table): leave DuckDB's default
    con.execute("SET lock_configuration = true")
    return con


def render(columns: list[str], rows: list[tuple], output_format: str) -> str:
    """The result as an aligned text table, CSV (header row) or a JSON array of objects."""
    if output_format == "csv":
        stream = io.StringIO()
        writer = csv.writer(stream)  # CRLF, as the nightly exports: a bare CR in a cell gets quoted
        if columns:
            writer.writerow(columns)
        writer.writerows([_csv_cell(value) for value in row] for row in rows)
        return stream.getvalue()
    if output_format == "json":
        records = [{name: _json_value(value) for name, value in zip(columns, row, strict=False)} for row in rows]
        return json_visible(json.dumps(records, indent=2, ensure_ascii=False)) + "\n"
    if output_format == "table":
        return _table(columns, rows)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {output_format!r}")


def _table(columns: list[str], rows: list[tuple]) -> str:
    if not columns:
        return "(no result)\n"
    cells = [[_display(value) for value in row] for row in rows]
    numeric = [
        all(
            isinstance(row[index], (int, float, Decimal)) and not isinstance(row[index], bool)
            for row in rows
            if row[index] is not None
        )
        and any(row[index] is not None for row in rows)
        for index in range(len(columns))
    ]
    widths = [max([len(visible(name))] + [len(row[index]) for row in cells]) for index, name in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " | ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=False)
        ).rstrip()

    out = [line([visible(name) for name in columns]), "-+-".join("-" * width for width in widths)]
    out += [line(row) for row in cells]
    out.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(out) + "\n"


def _display(value) -> str:
    """A value for the text table: NULL spelled out, lists in brackets, structs as JSON, control
    characters escaped."""
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_display(item) for item in value) + "]"
    if isinstance(value, dict):
        return json_visible(json.dumps(_json_value(value), ensure_ascii=False))
    if isinstance(value, datetime):
        return value.isoformat()
    return visible(csv_text(value))


def _csv_cell(value) -> str:
    """As the CSV exports write it (formula cells neutralised), but times in the session's
    (billing) time zone."""
    if isinstance(value, datetime):
        return value.isoformat()
    text = csv_text(value)
    return neutralise(text) if is_text_value(value) else text


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return jsonable(value)
