"""The finance tie-out: daily_reconciliation to the cent, and the numbered invariants.

Every invariant passes on the sample night and on the fixture below; each one is shown to
fail, alone, when the working database is corrupted the way it guards against; a failed
invariant stops `refund-recon run` with exit code 1 and leaves the warehouse as it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from exports import AS_OF, error_lines, purchase, refund, run_night, write_exports

from jobs import pipeline
from jobs.cli import main
from jobs.config import Settings, load_settings
from jobs.pipeline import run
from jobs.stages import validation
from jobs.stages.reconciliation import (
    INVARIANTS,
    InvariantFailed,
    build_daily_reconciliation,
    check_invariants,
    reconcile,
)

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
QUIET = dict(write_report=False, write_exports=False)  # the other stages are not under test here


# Six entities, two currencies, every refund status and verdict, one quarantined order.
# Billing time is Asia/Shanghai (UTC+8); amounts in the comments are what the rules find.
PURCHASES = [
    purchase(order_id="O1"),  # call USD 03-01, 100 cash
    purchase(
        order_id="O2",
        account_id="A2",
        entity_id="E2",
        purchased_at="2026-03-01 23:30:00",
        list_price="120.00",
        discount_amount="10.00",
        coupon_amount="10.00",
        paid_cash_credit="60.00",
        paid_commission_credit="30.00",
        paid_free_credit="10.00",
    ),  # refundable 100
    purchase(
        order_id="O3",
        account_id="A3",
        entity_id="E3",
        product="live",
        currency="CNY",
        list_price="500.00",
        coupon_amount="50.00",
        paid_cash_credit="450.00",
    ),
    purchase(
        order_id="O4",
        account_id="A4",
        entity_id="E4",  # 00:30 billing = 03-01 in UTC
        purchased_at="2026-03-01T16:30:00Z",
        list_price="50.00",
        paid_cash_credit="50.00",
    ),
    purchase(
        order_id="O5",
        account_id="A5",
        entity_id="E5",
        product="conference",
        purchased_at="2026-03-10 10:00:00",
        list_price="80.00",
        paid_cash_credit="80.00",
    ),
    purchase(
        order_id="O6",
        account_id="A6",
        entity_id="E6",
        product="live",
        currency="CNY",
        purchased_at="2026-03-20 10:00:00",
        list_price="300.00",
        paid_cash_credit="300.00",
    ),
    purchase(
        order_id="O7",
        account_id="A7",
        entity_id="E7",  # 100 listed, 90 paid: quarantined
        list_price="100.00",
        paid_cash_credit="90.00",
    ),
]
REFUNDS = [
    refund(refund_id="R1"),  # paid 100, compliant
    refund(
        refund_id="R2",
        order_id="O2",
        requested_at="2026-03-03 10:00:00",
        processed_at="2026-03-04 10:00:00",
        refund_cash_credit="80.00",
        refund_commission_credit="30.00",
        refund_free_credit="10.00",
        refund_amount="120.00",
    ),  # COUPON_REFUNDED 20, PATH_MISMATCH 20
    refund(
        refund_id="R3",
        order_id="O3",
        currency="CNY",
        processed_at="2026-03-02 18:00:00",
        refund_cash_credit="400.00",
        refund_amount="400.00",
    ),  # UNDER_REFUNDED: 50 owed
    refund(
        refund_id="R4",
        order_id="O4",
        requested_at="2026-03-31 10:00:00",
        status="pending",
        processed_at="",
        refund_cash_credit="50.00",
        refund_amount="50.00",
    ),  # PAST_WINDOW: stop
    refund(
        refund_id="R5",
        order_id="O5",
        requested_at="2026-03-11 10:00:00",
        status="rejected",
        processed_at="2026-03-12 10:00:00",
        refund_cash_credit="80.00",
        refund_amount="80.00",
    ),  # REJECTED_WITH_PAYOUT 80
    refund(
        refund_id="R6",
        order_id="O6",
        currency="CNY",
        requested_at="2026-03-21 10:00:00",
        processed_at="2026-04-02 10:00:00",
        refund_cash_credit="300.00",
        refund_amount="300.00",
    ),  # paid after as_of: pending
    refund(refund_id="R7", order_id="O7"),  # of a quarantined order
    refund(
        refund_id="R8",
        order_id="O6",
        currency="CNY",
        requested_at="2026-03-20 12:00:00",
        status="rejected",
        processed_at="2026-03-20 13:00:00",
        refund_cash_credit="0.00",
        refund_amount="0.00",
    ),  # rejected, nothing paid
    refund(
        refund_id="R9",
        order_id="O5",
        requested_at="2026-03-20 10:00:00",
        processed_at="2026-03-20 12:00:00",
        refund_cash_credit="80.00",
        refund_amount="80.00",
    ),  # PAST_WINDOW (day 11)
]


@pytest.fixture
def night(tmp_path):
    """A fresh run of the fixture night, its working tables free to corrupt."""
    return run_night(tmp_path, purchases=PURCHASES, refunds=REFUNDS)


def _rows(con, sql: str, *params) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]


def _failed(night) -> set[str]:
    return {result.invariant.code for result in check_invariants(night.runner) if not result.passed}


# --- the sample night --------------------------------------------------------------------


def test_the_sample_night_passes_every_invariant():
    settings = load_settings(SAMPLE / "refund-recon.toml")
    con = run(settings, SAMPLE, date(2026, 3, 31), None).con
    results = _rows(con, "SELECT invariant, name, passed, detail FROM invariant_results ORDER BY position")
    assert [row["invariant"] for row in results] == [invariant.code for invariant in INVARIANTS]
    assert [row for row in results if not row["passed"]] == []
    # The sample's own story (data/sample/README.md): 35 + 41 + 26 + 7 rows in, 24 refunds judged.
    assert con.execute(
        "SELECT sum(purchases_count), sum(refunds_requested_count) FROM daily_reconciliation"
    ).fetchone() == (34, 24)
    assert con.execute(
        "SELECT CAST(sum(amount_owed_to_customers) AS VARCHAR) FROM daily_reconciliation"
    ).fetchone() == ("10.00",)


def test_there_are_numbered_invariants_each_headed_by_what_it_proves():
    assert len(INVARIANTS) >= 8
    assert [invariant.code for invariant in INVARIANTS] == [f"I{n:02d}" for n in range(1, len(INVARIANTS) + 1)]
    for invariant in INVARIANTS:
        assert invariant.path.name == f"{invariant.code}_{invariant.meta['name']}.sql"
        assert invariant.sql.startswith("-- "), invariant.path.name
        assert len(invariant.description) > 40, invariant.code
    docs = (REPO / "docs" / "reconciliation.md").read_text(encoding="utf-8")
    for invariant in INVARIANTS:
        assert f"`{invariant.code}`" in docs and invariant.meta["name"] in docs, f"{invariant.code} is not documented"


# --- daily_reconciliation, to the cent ---------------------------------------------------

PURCHASE_COLUMNS = (
    "purchases_count",
    "purchases_list_price",
    "purchases_discount_amount",
    "purchases_coupon_amount",
    "purchases_paid_cash_credit",
    "purchases_paid_commission_credit",
    "purchases_paid_free_credit",
    "purchases_paid_amount",
)

EXPECTED_PURCHASES = {
    # O1 + O2 (O2 at 23:30 billing is still 03-01); O7 is quarantined and counts nowhere.
    ("2026-03-01", "call", "USD"): (2, "220.00", "10.00", "10.00", "160.00", "30.00", "10.00", "200.00"),
    ("2026-03-01", "live", "CNY"): (1, "500.00", "0.00", "50.00", "450.00", "0.00", "0.00", "450.00"),
    # O4 was bought at 16:30 UTC on 03-01, which is 00:30 on 03-02 in billing time.
    ("2026-03-02", "call", "USD"): (1, "50.00", "0.00", "0.00", "50.00", "0.00", "0.00", "50.00"),
    ("2026-03-10", "conference", "USD"): (1, "80.00", "0.00", "0.00", "80.00", "0.00", "0.00", "80.00"),
    ("2026-03-20", "live", "CNY"): (1, "300.00", "0.00", "0.00", "300.00", "0.00", "0.00", "300.00"),
}

REFUND_COLUMNS = (
    "refunds_requested_count",
    "refunds_requested_amount",
    "refunds_paid_count",
    "refunds_paid_amount",
    "refunds_rejected_count",
    "refunds_rejected_amount",
    "refunds_pending_count",
    "refunds_pending_amount",
    "refunds_paid_compliant_amount",
    "refunds_paid_in_breach_amount",
)

EXPECTED_REFUNDS = {
    ("2026-03-02", "call", "USD"): (1, "100.00", 1, "100.00", 0, "0.00", 0, "0.00", "100.00", "0.00"),  # R1
    ("2026-03-02", "live", "CNY"): (1, "400.00", 1, "400.00", 0, "0.00", 0, "0.00", "0.00", "400.00"),  # R3
    ("2026-03-03", "call", "USD"): (1, "120.00", 1, "120.00", 0, "0.00", 0, "0.00", "0.00", "120.00"),  # R2
    ("2026-03-11", "conference", "USD"): (1, "80.00", 0, "0.00", 1, "80.00", 0, "0.00", "0.00", "0.00"),  # R5
    ("2026-03-20", "conference", "USD"): (1, "80.00", 1, "80.00", 0, "0.00", 0, "0.00", "0.00", "80.00"),  # R9
    ("2026-03-20", "live", "CNY"): (1, "0.00", 0, "0.00", 1, "0.00", 0, "0.00", "0.00", "0.00"),  # R8
    ("2026-03-21", "live", "CNY"): (1, "300.00", 0, "0.00", 0, "0.00", 1, "300.00", "0.00", "0.00"),  # R6
    ("2026-03-31", "call", "USD"): (1, "50.00", 0, "0.00", 0, "0.00", 1, "50.00", "0.00", "0.00"),  # R4
}

RISK_COLUMNS = (
    "verdict_compliant_count",
    "verdict_breach_count",
    "verdict_stop_count",
    "verdict_rejected_count",
    "at_risk_breach",
    "at_risk_stop",
    "flags_count",
    "amount_recoverable",
    "amount_owed_to_customers",
)

EXPECTED_RISK = {
    ("2026-03-02", "call", "USD"): (1, 0, 0, 0, "0.00", "0.00", 0, "0.00", "0.00"),
    # An under-refund is a breach whose money goes the other way: owed, not recoverable.
    ("2026-03-02", "live", "CNY"): (0, 1, 0, 0, "50.00", "0.00", 1, "0.00", "50.00"),
    # 120 paid back on 100 refundable: only the 20 excess comes back, not the refund.
    ("2026-03-03", "call", "USD"): (0, 1, 0, 0, "20.00", "0.00", 2, "20.00", "0.00"),
    ("2026-03-11", "conference", "USD"): (0, 1, 0, 0, "80.00", "0.00", 1, "80.00", "0.00"),
    ("2026-03-20", "conference", "USD"): (0, 1, 0, 0, "80.00", "0.00", 1, "80.00", "0.00"),
    ("2026-03-20", "live", "CNY"): (0, 0, 0, 1, "0.00", "0.00", 0, "0.00", "0.00"),
    ("2026-03-21", "live", "CNY"): (1, 0, 0, 0, "0.00", "0.00", 0, "0.00", "0.00"),
    # Pending, so stopped before payout: at risk, but nothing to recover yet.
    ("2026-03-31", "call", "USD"): (0, 0, 1, 0, "0.00", "50.00", 1, "0.00", "0.00"),
}

EXPECTED_BY_RULE = {
    ("2026-03-02", "live", "CNY"): {"at_risk_under_refunded": "50.00"},
    ("2026-03-03", "call", "USD"): {"at_risk_coupon_refunded": "20.00", "at_risk_path_mismatch": "20.00"},
    ("2026-03-11", "conference", "USD"): {"at_risk_rejected_with_payout": "80.00"},
    ("2026-03-20", "conference", "USD"): {"at_risk_past_window": "80.00"},
    ("2026-03-31", "call", "USD"): {"at_risk_past_window": "50.00"},
}


def _table(con, columns) -> dict[tuple, tuple]:
    select = ", ".join(f"CAST({column} AS VARCHAR)" if not column.endswith("_count") else column for column in columns)
    rows = con.execute(
        f"SELECT CAST(billing_day AS VARCHAR), product, currency, {select} FROM daily_reconciliation ORDER BY ALL"
    ).fetchall()
    return {row[:3]: row[3:] for row in rows}


def test_one_row_per_billing_day_product_and_currency_of_a_purchase_or_a_refund_request(night):
    keys = set(_table(night.con, ()))
    assert keys == set(EXPECTED_PURCHASES) | set(EXPECTED_REFUNDS)
    row = _rows(night.con, "SELECT run_id, as_of FROM daily_reconciliation LIMIT 1")[0]
    assert row["as_of"] == AS_OF and row["run_id"]


def test_purchases_by_purchase_day_to_the_cent(night):
    table = _table(night.con, PURCHASE_COLUMNS)
    for key, row in table.items():
        assert row == EXPECTED_PURCHASES.get(key, (0,) + ("0.00",) * 7), key


def test_refunds_by_request_day_and_status_as_seen_to_the_cent(night):
    table = _table(night.con, REFUND_COLUMNS)
    for key, row in table.items():
        assert row == EXPECTED_REFUNDS.get(key, (0, "0.00") * 3 + (0, "0.00", "0.00", "0.00")), key


def test_verdicts_money_at_risk_recoverable_and_owed_to_the_cent(night):
    table = _table(night.con, RISK_COLUMNS)
    for key, row in table.items():
        assert row == EXPECTED_RISK.get(key, (0, 0, 0, 0, "0.00", "0.00", 0, "0.00", "0.00")), key


def test_money_at_risk_by_rule_to_the_cent(night):
    rule_columns = [
        f"at_risk_{rule_code.lower()}"
        for (rule_code,) in night.con.execute("SELECT rule_code FROM rule_catalog ORDER BY position").fetchall()
    ]
    table = _table(night.con, rule_columns)
    for key, row in table.items():
        expected = EXPECTED_BY_RULE.get(key, {})
        assert dict(zip(rule_columns, row, strict=False)) == {
            column: expected.get(column, "0.00") for column in rule_columns
        }, key


def test_money_columns_are_decimal_never_float(night):
    types = dict(
        night.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'daily_reconciliation'"
        ).fetchall()
    )
    money = [
        name
        for name in types
        if "amount" in name or (name.startswith(("at_risk_", "purchases_")) and name != "purchases_count")
    ]
    assert money and {types[name] for name in money} == {"DECIMAL(38,2)"}  # sums of DECIMAL(18,2) amounts
    assert not [name for name, kind in types.items() if kind in ("DOUBLE", "FLOAT", "REAL")]


def test_the_fixture_passes_every_invariant(night):
    rows = _rows(night.con, "SELECT invariant, passed, expected, actual FROM invariant_results ORDER BY position")
    assert len(rows) == len(INVARIANTS)
    assert [row for row in rows if not row["passed"]] == []
    paid = next(row for row in rows if row["invariant"] == "I07")
    assert paid["expected"] == paid["actual"] == "CNY 400.00 (1 paid), USD 300.00 (3 paid)"


# --- each invariant fails, alone, on what it guards against ------------------------------

_AFTER_RULES = "rebuild"  # corrupt a working table, then rebuild daily_reconciliation from it
_IN_RECONCILIATION = "as is"  # corrupt daily_reconciliation itself

CORRUPTIONS = {
    "I01": (_AFTER_RULES, "INSERT INTO quarantine VALUES ('purchases', 999, 'order_id', 'stray', NULL, 'stray')"),
    "I02": (_AFTER_RULES, "UPDATE run_inputs SET rows_read = rows_read + 1 WHERE source = 'usage'"),
    # R7's quarantine entry moved onto R1's line: R1 is then both loaded and quarantined.
    "I03": (
        _AFTER_RULES,
        "UPDATE quarantine SET line = (SELECT _line FROM delivered_refunds WHERE refund_id = 'R1') "
        "WHERE source = 'refunds'",
    ),
    "I04": (_AFTER_RULES, "UPDATE purchases SET coupon_amount = coupon_amount + 5 WHERE order_id = 'O1'"),
    "I05": (_AFTER_RULES, "DELETE FROM refund_verdicts WHERE refund_id = 'R6'"),
    "I06": (
        _AFTER_RULES,
        "UPDATE refund_verdicts SET verdict = 'compliant', amount_at_risk = 0, "
        "rule_codes = []::VARCHAR[] WHERE refund_id = 'R9'",
    ),
    "I07": (_AFTER_RULES, "UPDATE refund_verdicts SET refund_amount = refund_amount + 1 WHERE refund_id = 'R1'"),
    "I08": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET purchases_coupon_amount = purchases_coupon_amount "
        "+ 1 WHERE billing_day = '2026-03-01' AND product = 'call'",
    ),
    "I09": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET refunds_pending_count = refunds_pending_count + 1 "
        "WHERE billing_day = '2026-03-21'",
    ),
    "I10": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET at_risk_stop = at_risk_stop + 1 WHERE billing_day = '2026-03-31'",
    ),
    "I11": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET at_risk_path_mismatch = at_risk_path_mismatch + 1 "
        "WHERE billing_day = '2026-03-03'",
    ),
    "I12": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET refunds_paid_compliant_amount = "
        "refunds_paid_compliant_amount + 1 WHERE billing_day = '2026-03-02' "
        "AND product = 'call'",
    ),
    "I13": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET amount_recoverable = refunds_paid_in_breach_amount "
        "+ refunds_rejected_amount + 0.01 WHERE billing_day = '2026-03-03'",
    ),
    "I14": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET amount_owed_to_customers = "
        "amount_owed_to_customers + 1 WHERE billing_day = '2026-03-02' AND product = 'live'",
    ),
    "I15": (
        _IN_RECONCILIATION,
        "UPDATE daily_reconciliation SET billing_day = '2026-03-20' WHERE billing_day = '2026-03-21'",
    ),
    # R1, judged, is also a refund whose row tonight was quarantined.
    "I16": (_AFTER_RULES, "INSERT INTO quarantined_keys_refunds VALUES ('R1', 99)"),
    # R4, pending and flagged (stop), let through to payout.
    "I17": (_AFTER_RULES, "UPDATE pending_refund_decisions SET decision = 'pay' WHERE refund_id = 'R4'"),
}


def test_every_invariant_has_a_corruption_test():
    assert set(CORRUPTIONS) == {invariant.code for invariant in INVARIANTS}


@pytest.mark.parametrize("code", sorted(CORRUPTIONS))
def test_each_invariant_fails_alone_on_its_corruption(night, code):
    assert _failed(night) == set()
    when, corruption = CORRUPTIONS[code]
    night.con.execute(corruption)
    if when == _AFTER_RULES:
        build_daily_reconciliation(night.runner)
    assert _failed(night) == {code}
    stored = _rows(
        night.con, "SELECT invariant, passed, expected, actual, detail FROM invariant_results WHERE NOT passed"
    )
    assert len(stored) == 1 and stored[0]["invariant"] == code
    assert stored[0]["expected"] and stored[0]["actual"] and stored[0]["detail"]


# A refund judged although its latest delivery, or its order's, is quarantined (stale versions).
STALE_JUDGEMENTS = [
    ("INSERT INTO quarantined_keys_refunds VALUES ('R1', 99)", "R1: its row tonight is quarantined"),
    ("INSERT INTO quarantined_keys_purchases VALUES ('O1', 99)", "R1: its order O1 is withheld"),
    # stored as quarantined on an earlier night, not delivered tonight
    (
        "CREATE OR REPLACE TEMP VIEW stored_refunds AS SELECT *, true AS _quarantined FROM refunds "
        "WHERE refund_id = 'R3'; "
        "INSERT INTO undelivered_refunds SELECT _line FROM typed_refunds WHERE refund_id = 'R3'",
        "R3: its latest delivery was quarantined",
    ),
    (
        "CREATE OR REPLACE TEMP VIEW stored_purchases AS SELECT *, true AS _quarantined FROM purchases "
        "WHERE order_id = 'O3'; "
        "INSERT INTO undelivered_purchases SELECT _line FROM typed_purchases WHERE order_id = 'O3'",
        "R3: its order O3 is withheld",
    ),
]


@pytest.mark.parametrize("corruption, detail", STALE_JUDGEMENTS)
def test_i16_finds_a_refund_judged_on_a_version_whose_latest_delivery_is_quarantined(night, corruption, detail):
    night.con.execute(corruption)
    (result,) = [result for result in check_invariants(night.runner) if result.invariant.code == "I16"]
    assert not result.passed and result.detail == detail


def test_the_failure_names_the_invariant_and_its_figures(night):
    night.con.execute("DELETE FROM refund_verdicts WHERE refund_id = 'R6'")
    with pytest.raises(InvariantFailed) as failure:
        reconcile(night.runner)
    message = str(failure.value)
    assert "\n" not in message
    assert "I05 every_visible_refund_has_exactly_one_verdict" in message
    assert "R6: no verdict" in message and "nothing was written" in message


def test_a_check_that_cannot_run_counts_as_failed(night):
    broken = replace(
        INVARIANTS[0],
        reads=("no_such_table",),
        meta={"code": "I99", "name": "broken_check"},
        sql="SELECT true AS passed, '' AS expected, '' AS actual, '' AS detail FROM no_such_table",
    )
    (result,) = check_invariants(night.runner, (broken,))
    assert not result.passed and "could not run" in result.detail


# --- the command line and the warehouse --------------------------------------------------


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "recon.toml"
    path.write_text("[validation]\nmax_bad_row_fraction = 1.0\n[outputs]\nreport = false\nexports = false\n")
    return path


def _warehouse(db_path: Path) -> dict[str, list]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        names = [name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() for name in names}


def test_a_run_publishes_the_tie_out_and_keeps_its_history(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=PURCHASES, refunds=REFUNDS)
    db_path = tmp_path / "recon.duckdb"
    run(Settings(max_bad_row_fraction=1.0, **QUIET), folder, AS_OF, db_path)
    run(Settings(max_bad_row_fraction=1.0, **QUIET), folder, AS_OF, db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        counts = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "daily_reconciliation",
                "daily_reconciliation_history",
                "invariant_results",
                "invariant_results_history",
            )
        }
        assert con.execute("SELECT bool_and(passed) FROM invariant_results_history").fetchone() == (True,)
        latest_run = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        assert con.execute("SELECT DISTINCT run_id FROM invariant_results").fetchall() == [(latest_run,)]
    rows = len(set(EXPECTED_PURCHASES) | set(EXPECTED_REFUNDS))
    assert counts == {
        "daily_reconciliation": rows,
        "daily_reconciliation_history": 2 * rows,
        "invariant_results": len(INVARIANTS),
        "invariant_results_history": 2 * len(INVARIANTS),
    }


def test_a_broken_export_that_slips_past_validation_fails_the_run_and_writes_nothing(tmp_path, monkeypatch):
    config, db_path = _config(tmp_path), tmp_path / "out" / "recon.duckdb"
    good = write_exports(tmp_path / "good", purchases=PURCHASES, refunds=REFUNDS)
    first = CliRunner().invoke(
        main, ["run", "--input", str(good), "--db", str(db_path), "--as-of", "2026-03-31", "--config", str(config)]
    )
    assert first.exit_code == 0, first.output
    before = _warehouse(db_path)
    # Broken export: O1 lists 100.00 but 90.00 was paid. With the row checks switched off
    # (a validation bug), the order loads; the tie-out catches it.
    broken = write_exports(
        tmp_path / "broken",
        purchases=[purchase(paid_cash_credit="90.00")],
        refunds=[refund(refund_cash_credit="90.00", refund_amount="90.00")],
    )
    monkeypatch.setattr(validation, "failures_sql", lambda *args: "SELECT * FROM quarantine WHERE false")
    result = CliRunner().invoke(
        main, ["run", "--input", str(broken), "--db", str(db_path), "--as-of", "2026-03-31", "--config", str(config)]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = error_lines(result.stderr)
    assert line.startswith("refund-recon: 1 of ") and "nothing was written" in line
    assert "I04 loaded_purchases_satisfy_refundable_identity" in line and "O1" in line
    assert _warehouse(db_path) == before


def test_a_stage_that_loses_a_verdict_fails_the_run_and_writes_nothing(tmp_path, monkeypatch):
    config, db_path = _config(tmp_path), tmp_path / "recon.duckdb"
    folder = write_exports(tmp_path / "in", purchases=PURCHASES, refunds=REFUNDS)
    args = ["run", "--input", str(folder), "--db", str(db_path), "--as-of", "2026-03-31", "--config", str(config)]
    assert CliRunner().invoke(main, args).exit_code == 0
    before = _warehouse(db_path)
    detect_abuse = pipeline.detect_abuse

    def losing_a_verdict(runner, settings):
        detect_abuse(runner, settings)
        runner.engine.con.execute("DELETE FROM refund_verdicts WHERE refund_id = 'R2'")

    monkeypatch.setattr(pipeline, "detect_abuse", losing_a_verdict)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "I05 every_visible_refund_has_exactly_one_verdict" in line and "R2: no verdict" in line
    assert _warehouse(db_path) == before
