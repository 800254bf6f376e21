"""The night's Excel workbook (jobs/outputs/workbook.py, issue #14), read back with openpyxl: a summary
sheet first, one sheet per table, ids as text, money as numbers showing the currency, header
frozen, filters on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from exports import AS_OF, purchase, refund, write_exports

from jobs.config import Settings
from jobs.pipeline import run

SETTINGS = Settings(max_bad_row_fraction=1.0, write_report=False)
ACCOUNT, ORDER = "100104455672", "202603010001"


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A 12-digit account and order id; R1 past the window (1,999.00 CNY at risk); a refund
    id that a spreadsheet would take for a formula; a quarantined row (a warning); R3 compliant."""
    folder = tmp_path_factory.mktemp("workbook")
    exports = write_exports(
        folder / "in",
        purchases=[
            purchase(
                order_id=ORDER, account_id=ACCOUNT, currency="CNY", list_price="1999.00", paid_cash_credit="1999.00"
            ),
            purchase(order_id="O2"),
        ],
        refunds=[
            refund(
                refund_id="=R1",
                order_id=ORDER,
                currency="CNY",
                requested_at="2026-03-09 10:00:00",
                processed_at="2026-03-10 10:00:00",
                refund_cash_credit="1999.00",
                refund_amount="1999.00",
            ),
            refund(refund_id="R2", order_id="nope"),
            refund(refund_id="R3", order_id="O2"),
        ],
    )
    db_path = folder / "out" / "recon.duckdb"
    result = run(SETTINGS, exports, AS_OF, db_path)
    result.con.close()
    return db_path.parent / "exports" / "xlsx" / "refund-recon-2026-03-31.xlsx"


def sheet_rows(sheet) -> list[dict]:
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=False)) for row in sheet.iter_rows(min_row=2)]


def test_a_summary_sheet_first_then_one_sheet_per_table(night):
    book = openpyxl.load_workbook(night)
    assert book.sheetnames[0] == "summary"
    assert {
        "refund_flags",
        "refund_verdicts",
        "abuse_cases",
        "pending_refund_decisions",
        "daily_reconciliation",
        "gate_results",
        "invariant_results",
    } <= set(book.sheetnames[1:])
    summary = {row[0].value: row[1] for row in book["summary"].iter_rows() if row[0].value}
    assert summary["status"].value == "succeeded with warnings"
    assert summary["currency"].value == "amount at risk"
    cny = summary["CNY"]
    assert (cny.data_type, cny.value, cny.number_format) == ("n", 1999, '#,##0.00 "CNY"')


@pytest.mark.parametrize(
    "sheet, column, value, data_type, number_format",
    [
        ("refund_flags", "account_id", ACCOUNT, "s", "General"),  # 12 digits: text, never 1.00104E+11
        ("refund_flags", "order_id", ORDER, "s", "General"),
        ("refund_flags", "refund_id", "=R1", "s", "General"),  # text, not a formula
        ("refund_flags", "amount_at_risk", 1999, "n", '#,##0.00 "CNY"'),  # a number showing its currency
        ("refund_flags", "rule_code", "PAST_WINDOW", "s", "General"),
        ("refund_verdicts", "currency", "CNY", "s", "General"),  # the currency column stays beside
        ("refund_verdicts", "rule_codes", "PAST_WINDOW", "s", "General"),  # a list joined with '; '
        ("refund_verdicts", "as_of", datetime(2026, 3, 31), "d", "yyyy-mm-dd"),
    ],
)
def test_cells_keep_their_types(night, sheet, column, value, data_type, number_format):
    book = openpyxl.load_workbook(night)
    (row,) = [row for row in sheet_rows(book[sheet]) if row["refund_id"].value == "=R1"]
    cell = row[column]
    assert (cell.value, cell.data_type, cell.number_format) == (value, data_type, number_format)


def test_the_verdicts_sheet_holds_the_refunds_not_compliant_and_the_summary_counts_the_rest(night):
    book = openpyxl.load_workbook(night)
    assert [row["refund_id"].value for row in sheet_rows(book["refund_verdicts"])] == ["=R1"]
    counts = {row[0].value: row for row in book["summary"].iter_rows() if row[0].value == "refund_verdicts"}
    shown, total, note = (cell.value for cell in counts["refund_verdicts"][1:4])
    assert (shown, total) == (1, 2)
    assert "all of them in the CSV and Parquet exports" in note
    flags = {row[0].value: (row[1].value, row[2].value) for row in book["summary"].iter_rows()}
    assert flags["refund_flags"] == (1, 1)


def test_every_table_sheet_has_a_frozen_header_and_filters(night):
    book = openpyxl.load_workbook(night)
    for name in book.sheetnames[1:]:
        sheet = book[name]
        assert sheet.freeze_panes == "A2", name
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}{sheet.max_row}", name


def test_gate_results_and_quarantine_warnings_are_in_the_workbook(night):
    book = openpyxl.load_workbook(night)
    gates = sheet_rows(book["gate_results"])
    assert any(row["gate"].value == "freshness" and row["passed"].value is False for row in gates)
    warnings = [row[1].value for row in book["summary"].iter_rows() if row[0].value == "warning"]
    assert any(text.startswith("Freshness of refunds") for text in warnings)
    assert "refunds: 1 of 3 rows quarantined (33.33%), not in tonight's figures" in warnings


def test_account_ids_are_masked_with_mask_csv_exports(tmp_path):
    exports = write_exports(
        tmp_path / "in",
        purchases=[purchase(account_id=ACCOUNT)],
        refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")],
    )
    db_path = tmp_path / "out" / "recon.duckdb"
    run(replace(SETTINGS, mask_csv_exports=True), exports, AS_OF, db_path).con.close()
    book = openpyxl.load_workbook(db_path.parent / "exports" / "xlsx" / "refund-recon-2026-03-31.xlsx")
    (row,) = sheet_rows(book["refund_flags"])
    assert row["account_id"].value == "100…72"
    assert not [cell.value for sheet in book for line in sheet.iter_rows() for cell in line if cell.value == ACCOUNT]
    assert not list(Path(db_path.parent / "exports" / "xlsx").glob(".*")), "no temporary left behind"
