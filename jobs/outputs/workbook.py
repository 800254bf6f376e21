"""The night's finance tables as one Excel workbook (issue #14), beside the other exports:

    <db dir>/exports/xlsx/refund-recon-<as_of>.xlsx

A summary sheet first (the night, its status and warnings, the money per currency), then one
sheet per table, in export order (refund_verdicts: those not compliant, `PARTIAL_SHEETS`).
Cells keep their types so that Excel neither corrupts nor mangles them: every text is a text
cell (a 12-digit account or order id stays `100104455672`,
never `1.00105E+11`; a text that looks like a formula stays text), money is a number whose
format shows the row's currency (`1,999.00 CNY`; the currency column stays beside it), counts
are numbers, dates are dates and times are UTC date-times (the format says UTC), booleans are
booleans, lists are joined with '; ' and structs written as JSON. refund_flags gets its refund's
currency beside its amounts (the table has none of its own). Each table sheet has its
header row frozen and an autofilter. A table longer than a sheet holds (1,048,575 rows) is cut
there, and the summary says so: the CSV and Parquet exports have it whole.

Texts are masked as in the CSV exports (jobs/outputs/masking.py): payment fingerprints always, account
and entity ids with `[privacy] mask_csv_exports`. The file is written under a hidden name and
renamed into place (jobs/outputs/files.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import xlsxwriter

from jobs.engine.sqlfiles import quoted
from jobs.outputs import files, masking

MAX_ROWS = 1_048_575  # an Excel sheet's rows, less the header
SHEET_NAMES = {"daily_reconciliation": "daily_reconciliation", "daily_reconciliation_by_rule": "by_rule"}
# refund_flags has no currency of its own (SPEC 6): its refund's, from refund_verdicts, goes beside.
# refund_verdicts holds the refunds finance acts on: not compliant (breach, stop, rejected); the
# compliant ones, most of every night and nothing at risk, are in the CSV and Parquet exports.
SELECTS = {
    "refund_flags": "SELECT flag.*, verdict.currency FROM refund_flags AS flag "
    "LEFT JOIN refund_verdicts AS verdict ON verdict.refund_id = flag.refund_id "
    "ORDER BY flag.rowid",
    "refund_verdicts": "SELECT * FROM refund_verdicts WHERE verdict <> 'compliant' ORDER BY rowid",
}
PARTIAL_SHEETS = {"refund_verdicts": "the refunds not compliant; all of them in the CSV and Parquet exports"}
MONEY_FORMAT = '#,##0.00 "{currency}"'
MONEY_HEADERS = ("currency", "amount at risk", "amount recoverable", "amount owed to customers")


def workbook_path(base: Path, as_of: date) -> Path:
    return base / "exports" / "xlsx" / f"refund-recon-{as_of.isoformat()}.xlsx"


def write_workbook(con, target: Path, tables: list[str], summary: dict, mask_identifiers: bool) -> Path:
    """Write `tables` of the warehouse `con` (read-only) and the `summary` sheet to `target`.

    `summary`: as_of, run_id, status, warnings (jobs/outputs/outcome.py), money ({currency: amounts})."""
    read = {table: _read(con, table) for table in tables}
    masking.create_known_ids(con)
    texts = {value for columns, _, rows in read.values() for row in rows for value in row if isinstance(value, str)}
    masker = masking.masker_for(con, texts, identifiers=mask_identifiers)
    target.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(target) as temporary:
        book = xlsxwriter.Workbook(
            str(temporary),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        styles = _Styles(book)
        _summary_sheet(
            book, styles, summary, {table: (len(rows), _count(con, table)) for table, (_, _, rows) in read.items()}
        )
        for table, (columns, kinds, rows) in read.items():
            _table_sheet(book.add_worksheet(SHEET_NAMES.get(table, table)[:31]), styles, columns, kinds, rows, masker)
        book.close()
    return target


def _count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {quoted(table)}").fetchone()[0]


def _read(con, table: str) -> tuple[list[str], list[str], list[tuple]]:
    relation = con.sql(SELECTS.get(table, f"SELECT * FROM {quoted(table)}"))
    return relation.columns, [str(kind) for kind in relation.types], relation.fetchall()


class _Styles:
    """The workbook's cell formats, one per kind (and per currency for money)."""

    def __init__(self, book):
        self.book = book
        self.header = book.add_format({"bold": True, "bg_color": "#E4E7EB", "bottom": 1})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.bold = book.add_format({"bold": True})
        self.day = book.add_format({"num_format": "yyyy-mm-dd"})
        self.moment = book.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'})
        self.number = book.add_format({"num_format": "#,##0"})
        self.decimal = book.add_format({"num_format": "#,##0.00####"})
        self._money: dict[str, object] = {}

    def money(self, currency: str | None):
        currency = currency or ""
        if currency not in self._money:
            self._money[currency] = self.book.add_format(
                {"num_format": MONEY_FORMAT.format(currency=currency.replace('"', "")) if currency else "#,##0.00"}
            )
        return self._money[currency]


def _summary_sheet(book, styles: _Styles, summary: dict, row_counts: dict[str, tuple[int, int]]) -> None:
    """The night, its status and warnings, the money per currency, then each sheet's rows
    (of the table's rows, where a sheet holds some of them)."""
    sheet = book.add_worksheet("summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 3, 24)
    sheet.write_string(0, 0, f"Refund reconciliation, night of {summary['as_of']}", styles.title)
    row = 2
    for label, value in (("run", summary["run_id"]), ("status", summary["status"].replace("_", " "))):
        sheet.write_string(row, 0, label, styles.bold)
        sheet.write_string(row, 1, value)
        row += 1
    for warning in summary["warnings"]:
        sheet.write_string(row, 0, "warning", styles.bold)
        sheet.write_string(row, 1, warning["message"])
        row += 1
    row += 1
    for column, header in enumerate(MONEY_HEADERS):
        sheet.write_string(row, column, header, styles.header)
    for currency, amounts in summary["money"].items():
        row += 1
        sheet.write_string(row, 0, currency)
        for column, name in enumerate(("amount_at_risk", "amount_recoverable", "amount_owed_to_customers"), 1):
            sheet.write_number(row, column, float(amounts[name]), styles.money(currency))
    row += 2
    sheet.write_string(row, 0, "sheet", styles.header)
    sheet.write_string(row, 1, "rows", styles.header)
    sheet.write_string(row, 2, "of the table's", styles.header)
    for table, (shown, total) in row_counts.items():
        row += 1
        sheet.write_string(row, 0, SHEET_NAMES.get(table, table)[:31])
        sheet.write_number(row, 1, min(shown, MAX_ROWS), styles.number)
        sheet.write_number(row, 2, total, styles.number)
        if shown > MAX_ROWS:
            sheet.write_string(row, 3, f"first {MAX_ROWS:,} rows here; all of them in the CSV and Parquet exports")
        elif table in PARTIAL_SHEETS:
            sheet.write_string(row, 3, PARTIAL_SHEETS[table])


def _table_sheet(
    sheet, styles: _Styles, columns: list[str], kinds: list[str], rows: list[tuple], masker: masking.Masker
) -> None:
    for column, name in enumerate(columns):
        sheet.write_string(0, column, name, styles.header)
        sheet.set_column(column, column, min(40, max(12, len(name) + 2)))
    currency_at = columns.index("currency") if "currency" in columns else None
    writers = [_cell_writer(sheet, kind, styles, masker) for kind in kinds]
    for index, row in enumerate(rows[:MAX_ROWS], 1):
        currency = row[currency_at] if currency_at is not None else None
        for column, (write, value) in enumerate(zip(writers, row, strict=True)):
            if value is None:
                sheet.write_blank(index, column, None)
            else:
                write(index, column, value, currency)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, min(len(rows), MAX_ROWS), max(0, len(columns) - 1))


def _cell_writer(sheet, kind: str, styles: _Styles, masker: masking.Masker):
    """How a column of this DuckDB type writes a cell, typed: text as text, money with its
    currency, times in UTC; chosen once per column."""
    if kind == "BOOLEAN":
        return lambda row, column, value, currency: sheet.write_boolean(row, column, value)
    if kind.startswith("DECIMAL(") and kind.endswith(",2)"):
        return lambda row, column, value, currency: sheet.write_number(
            row, column, float(value), styles.money(currency)
        )
    if kind.startswith("DECIMAL(") or kind in ("DOUBLE", "FLOAT"):
        return lambda row, column, value, currency: sheet.write_number(row, column, float(value), styles.decimal)
    if kind in _INTEGER_TYPES:
        return lambda row, column, value, currency: sheet.write_number(row, column, value, styles.number)
    if kind.startswith("TIMESTAMP"):
        return lambda row, column, value, currency: sheet.write_datetime(row, column, _utc(value), styles.moment)
    if kind == "DATE":
        return lambda row, column, value, currency: sheet.write_datetime(
            row, column, datetime(value.year, value.month, value.day), styles.day
        )
    return lambda row, column, value, currency: sheet.write_string(row, column, masker.text(_text(value)))


_INTEGER_TYPES = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _text(value) -> str:
    """A text cell's text: lists joined with '; ', structs and maps as JSON."""
    if isinstance(value, (list, tuple)):
        return "; ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
