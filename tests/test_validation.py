"""Validation (SPEC sections 2 and 3): every visible row is loaded or quarantined, with the
line, column, check and value of each failure.

The cases run the night's load and validate stages alone (tests/loads.py); the bad row limit on
the command line and its untouched warehouse run whole."""

from __future__ import annotations

from datetime import datetime

import pytest
from click.testing import CliRunner
from exports import purchase, refund, status, usage, write_exports
from loads import load_folder, load_night

from jobs.cli import main
from jobs.config import Settings
from jobs.stages.schemas import EXPORTS
from jobs.stages.validation import TooManyBadRows


def failures(night, source: str) -> list[tuple]:
    """(line, column, check) of each quarantine entry of one export."""
    return sorted((e["line"], e["column"], e["check"]) for e in night.errors(source))


def one_bad_purchase(tmp_path, **overrides):
    night = load_night(tmp_path, purchases=[purchase(order_id="O1"), purchase(order_id="O2", **overrides)])
    assert night.loaded_keys("purchases", "order_id") == ["O1"]
    return night


def one_bad_refund(tmp_path, **overrides):
    night = load_night(
        tmp_path, purchases=[purchase()], refunds=[refund(refund_id="R1"), refund(refund_id="R2", **overrides)]
    )
    assert night.loaded_keys("refunds", "refund_id") == ["R1"]
    return night


def one_bad_usage(tmp_path, **overrides):
    night = load_night(
        tmp_path, purchases=[purchase()], usage=[usage(usage_id="U1"), usage(usage_id="U2", **overrides)]
    )
    assert night.loaded_keys("usage", "usage_id") == ["U1"]
    return night


def one_bad_status(tmp_path, **overrides):
    night = load_night(
        tmp_path,
        purchases=[purchase()],
        account_status=[status(), status(**({"effective_at": "2026-03-03 09:00:00"} | overrides))],
    )
    assert night.loaded_keys("account_status", "_line") == [2]
    return night


# --- values of the wrong type -------------------------------------------------------------------


def test_an_int_that_is_not_whole_is_a_type_error(tmp_path):
    night = one_bad_purchase(tmp_path, sdkappid="1400000001.5")
    assert night.errors("purchases") == [
        {
            "line": 3,
            "column": "sdkappid",
            "check": "type",
            "value": "1400000001.5",
            "message": "sdkappid must be a whole number within 64 bits, got '1400000001.5'",
        }
    ]


def test_money_that_is_not_a_number_is_a_type_error(tmp_path):
    night = one_bad_refund(tmp_path, refund_free_credit="1,50")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("refunds")] == [
        (3, "refund_free_credit", "type", "1,50"),
    ]


def test_minutes_that_are_not_a_number_are_a_type_error(tmp_path):
    night = one_bad_usage(tmp_path, minutes="ten")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("usage")] == [
        (3, "minutes", "type", "ten"),
    ]


def test_a_timestamp_that_does_not_parse_is_a_type_error(tmp_path):
    night = one_bad_usage(tmp_path, started_at="2026-02-30 12:00:00")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("usage")] == [
        (3, "started_at", "type", "2026-02-30 12:00:00"),
    ]


def test_a_value_that_does_not_parse_is_reported_once_as_a_type_error(tmp_path):
    night = one_bad_refund(tmp_path, requested_at="yesterday")
    assert failures(night, "refunds") == [(3, "requested_at", "type")]


# --- missing and out-of-range values ---------------------------------------------------------


def test_an_empty_required_purchase_column_is_not_nullable(tmp_path):
    night = one_bad_purchase(tmp_path, entity_id="")
    assert night.errors("purchases") == [
        {
            "line": 3,
            "column": "entity_id",
            "check": "not_nullable",
            "value": None,
            "message": "entity_id is required but empty",
        }
    ]


def test_an_empty_required_timestamp_is_not_nullable(tmp_path):
    night = one_bad_usage(tmp_path, started_at="")
    assert failures(night, "usage") == [(3, "started_at", "not_nullable")]


def test_an_empty_refund_order_id_is_not_nullable_only(tmp_path):
    night = one_bad_refund(tmp_path, order_id="")
    assert failures(night, "refunds") == [(3, "order_id", "not_nullable")]


def test_an_empty_account_status_effective_at_is_not_nullable(tmp_path):
    night = one_bad_status(tmp_path, effective_at="")
    assert failures(night, "account_status") == [(3, "effective_at", "not_nullable")]


def test_usage_without_an_order_is_free_minutes_and_loads(tmp_path):
    night = load_night(tmp_path, purchases=[purchase()], usage=[usage(order_id="")])
    assert night.errors("usage") == []
    assert night.loaded_keys("usage", "usage_id") == ["U1"]


def test_a_negative_purchase_amount_is_quarantined(tmp_path):
    night = one_bad_purchase(tmp_path, coupon_amount="-5.00", paid_cash_credit="105.00")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("purchases")] == [
        (3, "coupon_amount", "greater_than_or_equal_to", "-5.00"),
    ]


def test_a_negative_refund_part_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, refund_cash_credit="101.00", refund_free_credit="-1.00")
    assert failures(night, "refunds") == [(3, "refund_free_credit", "greater_than_or_equal_to")]


def test_negative_minutes_are_quarantined(tmp_path):
    night = one_bad_usage(tmp_path, minutes="-1")
    assert failures(night, "usage") == [(3, "minutes", "greater_than_or_equal_to")]


def test_sdkappid_zero_is_quarantined(tmp_path):
    night = one_bad_usage(tmp_path, sdkappid="0")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("usage")] == [
        (3, "sdkappid", "greater_than", "0"),
    ]


@pytest.mark.parametrize("column, value", [("product", "tv"), ("package_kind", "bundle")])
def test_a_purchase_enum_outside_its_values_is_quarantined(tmp_path, column, value):
    night = one_bad_purchase(tmp_path, **{column: value})
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("purchases")] == [
        (3, column, "isin", value),
    ]


def test_a_media_type_outside_its_values_is_quarantined(tmp_path):
    night = one_bad_usage(tmp_path, media_type="video_8k")
    assert failures(night, "usage") == [(3, "media_type", "isin")]


def test_a_refund_status_outside_its_values_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, status="done")
    assert failures(night, "refunds") == [(3, "status", "isin")]


@pytest.mark.parametrize("column, value", [("status", "frozen"), ("reason", "spam")])
def test_an_account_status_enum_outside_its_values_is_quarantined(tmp_path, column, value):
    night = one_bad_status(tmp_path, **{column: value})
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("account_status")] == [
        (3, column, "isin", value),
    ]


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U5D"])
def test_a_currency_that_is_not_three_upper_case_letters_is_quarantined(tmp_path, currency):
    night = one_bad_purchase(tmp_path, currency=currency)
    assert failures(night, "purchases") == [(3, "currency", "str_matches")]


# --- row rules -------------------------------------------------------------------------------


def test_a_purchase_breaking_the_refundable_amount_identity_is_quarantined(tmp_path):
    night = one_bad_purchase(tmp_path, paid_cash_credit="99.98")
    assert night.errors("purchases") == [
        {
            "line": 3,
            "column": "paid_cash_credit",
            "check": "refundable_amount_identity",
            "value": "list_price=100.00, discount_amount=0.00, coupon_amount=0.00, paid_cash_credit=99.98, "
            "paid_commission_credit=0.00, paid_free_credit=0.00",
            "message": "list_price - discount_amount - coupon_amount must equal "
            "paid_cash_credit + paid_commission_credit + paid_free_credit (within 0.01)",
        }
    ]


def test_the_refundable_amount_identity_holds_within_a_cent(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[
            purchase(order_id="O1", paid_cash_credit="99.99"),
            purchase(order_id="O2", paid_cash_credit="100.01"),
            purchase(
                order_id="O3",
                list_price="50.00",
                discount_amount="10.00",
                coupon_amount="5.00",
                paid_cash_credit="20.00",
                paid_commission_credit="10.00",
                paid_free_credit="5.01",
            ),
        ],
    )
    assert night.errors("purchases") == []
    assert night.loaded_keys("purchases", "order_id") == ["O1", "O2", "O3"]


def test_refund_parts_not_summing_to_the_refund_amount_are_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, refund_cash_credit="60.00", refund_free_credit="39.98", refund_amount="100.00")
    assert failures(night, "refunds") == [(3, "refund_amount", "refund_parts_sum_to_amount")]


def test_refund_parts_summing_within_a_cent_load(tmp_path):
    night = load_night(
        tmp_path, purchases=[purchase()], refunds=[refund(refund_cash_credit="60.00", refund_free_credit="39.99")]
    )
    assert night.errors("refunds") == []


def test_processed_at_on_a_pending_refund_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, status="pending", processed_at="2026-03-03 12:00:00")
    assert failures(night, "refunds") == [(3, "processed_at", "processed_at_null_iff_pending")]


@pytest.mark.parametrize("refund_status", ["paid", "rejected"])
def test_a_decided_refund_without_processed_at_is_quarantined(tmp_path, refund_status):
    night = one_bad_refund(tmp_path, status=refund_status, processed_at="")
    assert failures(night, "refunds") == [(3, "processed_at", "processed_at_null_iff_pending")]


def test_a_pending_refund_without_processed_at_loads(tmp_path):
    night = load_night(tmp_path, purchases=[purchase()], refunds=[refund(status="pending", processed_at="")])
    assert night.errors("refunds") == []
    assert night.loaded_keys("refunds", "refund_id") == ["R1"]


def test_processed_at_before_requested_at_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, requested_at="2026-03-02 12:00:00", processed_at="2026-03-02 11:59:59")
    assert failures(night, "refunds") == [(3, "processed_at", "processed_not_before_requested")]


# --- duplicate keys ----------------------------------------------------------------------------


def test_a_duplicate_key_keeps_the_first_row_and_quarantines_the_later_naming_the_first_line(tmp_path):
    night = load_night(
        tmp_path, purchases=[purchase(order_id="O1"), purchase(order_id="O2"), purchase(order_id="O1", edition="pro")]
    )
    assert night.loaded_keys("purchases", "_line") == [2, 3]
    [error] = night.errors("purchases")
    assert (error["line"], error["column"], error["check"], error["value"]) == (4, "order_id", "duplicate_key", "O1")
    assert "line 2" in error["message"]


def test_a_duplicate_of_an_invalid_first_row_is_still_quarantined(tmp_path):
    night = load_night(
        tmp_path, purchases=[purchase()], usage=[usage(usage_id="U1", media_type="smell"), usage(usage_id="U1")]
    )
    assert night.loaded_keys("usage", "usage_id") == []
    assert failures(night, "usage") == [(2, "media_type", "isin"), (3, "usage_id", "duplicate_key")]


def test_account_status_rows_with_the_same_account_and_instant_are_duplicates(tmp_path):
    night = load_night(
        tmp_path,
        account_status=[
            status(account_id="A1", effective_at="2026-03-02 09:00:00"),
            status(account_id="A2", effective_at="2026-03-02 09:00:00"),
            status(account_id="A1", effective_at="2026-03-02T01:00:00Z", status="active", reason=""),
            status(account_id="A1", effective_at="2026-03-02T09:00:00+08:00", status="closed", reason=""),
        ],
    )
    assert night.loaded_keys("account_status", "_line") == [2, 3]
    assert failures(night, "account_status") == [
        (4, "account_id, effective_at", "duplicate_key"),
        (5, "account_id, effective_at", "duplicate_key"),
    ]
    assert all("line 2" in e["message"] for e in night.errors("account_status"))


# Each night: a record whose first row loads and whose later duplicate is quarantined, and a
# record whose only row is quarantined, on line 3 (sql/validation/90_quarantined_keys.sql).
WITHHELD_CASES = {
    "purchases": dict(
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", product="tv"), purchase(order_id="O1")]
    ),
    "refunds": dict(
        purchases=[purchase()],
        refunds=[refund(refund_id="R1"), refund(refund_id="R2", order_id="O9"), refund(refund_id="R1")],
    ),
    "usage": dict(
        purchases=[purchase()],
        usage=[usage(usage_id="U1"), usage(usage_id="U2", media_type="smell"), usage(usage_id="U1")],
    ),
    "account_status": dict(
        account_status=[status(account_id="A1"), status(account_id="A2", status="bogus"), status(account_id="A1")]
    ),
}


@pytest.mark.parametrize("stem", WITHHELD_CASES)
def test_only_a_record_whose_every_row_tonight_is_quarantined_is_withheld(tmp_path, stem):
    night = load_night(tmp_path, **WITHHELD_CASES[stem])
    first_key = EXPORTS[stem].key[0]
    withheld = night.con.execute(f"SELECT {first_key}, _line FROM quarantined_keys_{stem}").fetchall()
    assert withheld == [(WITHHELD_CASES[stem][stem][1][first_key], 3)]


# --- cross rules -------------------------------------------------------------------------------


def test_an_account_claimed_by_a_second_entity_quarantines_the_later_purchase(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[
            purchase(order_id="O1", account_id="A1", entity_id="E2", purchased_at="2026-03-05 10:00:00"),
            purchase(order_id="O2", account_id="A1", entity_id="E1", purchased_at="2026-03-01 10:00:00"),
            purchase(order_id="O3", account_id="A1", entity_id="E1", purchased_at="2026-03-07 10:00:00"),
        ],
    )
    assert night.loaded_keys("purchases", "order_id") == ["O2", "O3"]
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("purchases")] == [
        (2, "entity_id", "account_entity_conflict", "E2"),
    ]


def test_a_refund_of_an_unknown_order_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, order_id="O9")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("refunds")] == [
        (3, "order_id", "unknown_order", "O9"),
    ]


def test_a_refund_of_a_quarantined_order_is_quarantined_with_that_reason(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", product="tv")],
        refunds=[refund(refund_id="R1", order_id="O1"), refund(refund_id="R2", order_id="O2")],
    )
    assert night.loaded_keys("refunds", "refund_id") == ["R1"]
    [error] = night.errors("refunds")
    assert (error["line"], error["column"], error["check"], error["value"]) == (
        3,
        "order_id",
        "order_quarantined",
        "O2",
    )
    assert "purchases line 3" in error["message"]


def test_a_refund_of_an_order_quarantined_as_a_duplicate_names_the_first_order_row(tmp_path):
    # O1 on line 2 is invalid, its duplicate on line 3 is quarantined too: O1 is not loaded.
    night = load_night(
        tmp_path,
        purchases=[purchase(order_id="O1", sdkappid="0"), purchase(order_id="O1")],
        refunds=[refund(order_id="O1")],
    )
    assert failures(night, "refunds") == [(2, "order_id", "order_quarantined")]
    assert "purchases line 2" in night.errors("refunds")[0]["message"]


def test_usage_of_an_unknown_order_is_quarantined(tmp_path):
    night = one_bad_usage(tmp_path, order_id="O9")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("usage")] == [
        (3, "order_id", "unknown_order", "O9"),
    ]


def test_usage_of_a_quarantined_order_is_quarantined_with_that_reason(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", currency="usd")],
        usage=[usage(usage_id="U1", order_id="O2")],
    )
    [error] = night.errors("usage")
    assert (error["line"], error["column"], error["check"]) == (2, "order_id", "order_quarantined")
    assert "purchases line 3" in error["message"]


def test_usage_before_the_purchase_day_is_quarantined(tmp_path):
    night = one_bad_usage(tmp_path, started_at="2026-02-28 23:59:59")
    assert [(e["line"], e["column"], e["check"]) for e in night.errors("usage")] == [
        (3, "started_at", "usage_before_purchase_day"),
    ]


def test_usage_before_the_purchase_day_in_billing_time_is_quarantined_whatever_its_offset(tmp_path):
    # 15:59:59Z on the 28th is 23:59:59 billing time, the day before the purchase day.
    night = one_bad_usage(tmp_path, started_at="2026-02-28T15:59:59Z")
    assert failures(night, "usage") == [(3, "started_at", "usage_before_purchase_day")]


def test_usage_from_midnight_of_the_purchase_day_and_before_the_purchase_time_loads(tmp_path):
    # The order was bought at 2026-03-01 10:00 billing time.
    night = load_night(
        tmp_path,
        purchases=[purchase()],
        usage=[
            usage(usage_id="U1", started_at="2026-03-01 00:00:00"),
            usage(usage_id="U2", started_at="2026-02-28T16:00:00Z"),
            usage(usage_id="U3", started_at="2026-03-01 09:59:59"),
        ],
    )
    assert night.errors("usage") == []
    assert night.loaded_keys("usage", "usage_id") == ["U1", "U2", "U3"]


def test_a_refund_requested_before_the_purchase_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, requested_at="2026-03-01 09:59:59")
    assert failures(night, "refunds") == [(3, "requested_at", "refund_before_purchase")]


def test_a_refund_requested_at_the_purchase_instant_loads(tmp_path):
    night = load_night(tmp_path, purchases=[purchase()], refunds=[refund(requested_at="2026-03-01T02:00:00Z")])
    assert night.errors("refunds") == []


def test_a_refund_in_another_currency_than_its_order_is_quarantined(tmp_path):
    night = one_bad_refund(tmp_path, currency="EUR")
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors("refunds")] == [
        (3, "currency", "currency_mismatch", "EUR"),
    ]


# --- as_of and counts --------------------------------------------------------------------------


def test_rows_after_as_of_are_set_aside_not_errors(tmp_path):
    # as_of 2026-03-31 ends at 2026-04-01 00:00 billing time = 2026-03-31 16:00Z.
    night_result = load_folder(
        write_exports(
            tmp_path / "in",
            purchases=[purchase()],
            refunds=[
                refund(refund_id="R1", requested_at="2026-03-31 23:59:59", status="pending", processed_at=""),
                refund(refund_id="R2", requested_at="2026-04-01 00:00:00", refund_amount="oops"),
                refund(refund_id="R3", requested_at="2026-03-31T16:00:00Z", order_id="O9"),
            ],
            usage=[usage(usage_id="U1", started_at="2026-04-02 00:00:00", order_id="O9")],
        )
    )
    counts = night_result.files["refunds"]
    assert (counts.rows_read, counts.rows_after_as_of, counts.rows_in, counts.rows_loaded, counts.rows_quarantined) == (
        3,
        2,
        1,
        1,
        0,
    )
    assert night_result.files["usage"].rows_after_as_of == 1
    assert night_result.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    assert night_result.con.execute("SELECT refund_id FROM refunds").fetchall() == [("R1",)]


def test_rows_in_is_rows_loaded_plus_rows_quarantined_counting_each_bad_row_once(tmp_path):
    result = load_folder(
        write_exports(
            tmp_path / "in",
            purchases=[purchase()],
            refunds=[
                refund(refund_id="R1"),
                refund(refund_id="R2", status="done", currency="usd", refund_amount="1.00"),  # three failures
                refund(refund_id="R1"),  # duplicate
                refund(refund_id="R4", requested_at="2026-04-05 00:00:00"),  # after as_of
            ],
        )
    )
    counts = result.files["refunds"]
    assert (counts.rows_read, counts.rows_after_as_of, counts.rows_in, counts.rows_loaded, counts.rows_quarantined) == (
        4,
        1,
        3,
        1,
        2,
    )


def _four_purchases_one_bad(folder):
    return write_exports(
        folder,
        purchases=[
            purchase(order_id="O1"),
            purchase(order_id="O2", product="tv"),
            purchase(order_id="O3"),
            purchase(order_id="O4"),
        ],
    )


def test_more_bad_rows_than_max_bad_row_fraction_fails_the_run(tmp_path):
    folder = _four_purchases_one_bad(tmp_path / "in")
    with pytest.raises(TooManyBadRows, match=r"purchases: 1 of 4 rows quarantined"):
        load_folder(folder, Settings(max_bad_row_fraction=0.24))


def test_bad_rows_at_exactly_max_bad_row_fraction_are_accepted(tmp_path):
    folder = _four_purchases_one_bad(tmp_path / "in")
    result = load_folder(folder, Settings(max_bad_row_fraction=0.25))
    assert result.files["purchases"].rows_quarantined == 1


def test_too_many_bad_rows_on_the_command_line_exits_1_without_creating_the_warehouse(tmp_path):
    folder = _four_purchases_one_bad(tmp_path / "in")
    db = tmp_path / "out" / "recon.duckdb"
    result = CliRunner().invoke(main, ["run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31"])
    assert result.exit_code == 1
    assert "max_bad_row_fraction" in result.output
    assert not db.exists()


def test_too_many_bad_rows_leave_the_previous_warehouse_unchanged(tmp_path):
    db = tmp_path / "recon.duckdb"
    good = write_exports(tmp_path / "good", purchases=[purchase()], refunds=[refund()])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--input", str(good), "--db", str(db), "--as-of", "2026-03-31"])
    assert first.exit_code == 0, first.output
    before = db.read_bytes()
    bad = _four_purchases_one_bad(tmp_path / "bad")
    second = runner.invoke(main, ["run", "--input", str(bad), "--db", str(db), "--as-of", "2026-03-31"])
    assert second.exit_code == 1
    assert db.read_bytes() == before


# --- timestamps: ISO 8601 instants only (docs/validation.md) -----------------------------------

ISO_TIMESTAMPS = {  # text -> the instant in UTC
    "2026-03-02 12:00:00": "2026-03-02 04:00:00",  # naive: billing time (UTC+8)
    "2026-03-02T12:00:00": "2026-03-02 04:00:00",
    "2026-03-02 12:00": "2026-03-02 04:00:00",
    "2026-03-02 12:00:00.5": "2026-03-02 04:00:00.5",
    "2026-03-02 12:00:00.1234569": "2026-03-02 04:00:00.123456",  # kept to the microsecond, never rounded up
    "2026-03-02T12:00:00Z": "2026-03-02 12:00:00",
    "2026-03-02T12:00:00+09:00": "2026-03-02 03:00:00",
    "2026-03-02T12:00:00+0900": "2026-03-02 03:00:00",
    "2026-03-02T12:00:00+09": "2026-03-02 03:00:00",
    "2026-03-02 12:00:00-05:30": "2026-03-02 17:30:00",
    " 2026-03-02 12:00:00 ": "2026-03-02 04:00:00",  # surrounding blanks are trimmed
}


@pytest.fixture(scope="module")
def timestamps_night(tmp_path_factory):
    """One night holding every timestamp case, a row each (read by its line): usage U<n> started at
    the n-th text of ISO_TIMESTAMPS, on line n + 1; after a valid refund R0 on line 2, refund R<n>
    requested at the n-th text of NOT_ISO_TIMESTAMPS, on line n + 2. The rows differ in nothing else
    and no check compares one with another (keys differ), so each case is judged as if alone."""
    return load_night(
        tmp_path_factory.mktemp("timestamps"),
        purchases=[purchase()],
        usage=[usage(usage_id=f"U{n}", started_at=text) for n, text in enumerate(ISO_TIMESTAMPS, 1)],
        refunds=[refund(refund_id="R0")]
        + [refund(refund_id=f"R{n}", requested_at=text) for n, text in enumerate(NOT_ISO_TIMESTAMPS, 1)],
    )


@pytest.mark.parametrize("text, utc", ISO_TIMESTAMPS.items(), ids=ISO_TIMESTAMPS.keys())
def test_an_iso_8601_timestamp_loads_as_its_instant(timestamps_night, text, utc):
    line = list(ISO_TIMESTAMPS).index(text) + 2  # usage U<n>: line n + 1
    assert [e for e in timestamps_night.errors("usage") if e["line"] == line] == []
    assert timestamps_night.con.execute(
        "SELECT timezone('UTC', started_at) FROM delivered_usage WHERE _line = ?", [line]
    ).fetchall() == [(datetime.fromisoformat(utc),)]


NOT_ISO_TIMESTAMPS = [
    "infinity",
    "-infinity",
    "epoch",
    "now",
    "today",
    "2026-2-3 10:00",
    "2026-03-02",
    "2026-03-02T",
    "Asia/Tokyo",
    "PST",
    "2026-03-02 12:00:00 Asia/Tokyo",
    "2026-03-02 12:00:00 PST",
    "2026-03-02 12:00:00 +08:00",
    "2026-03-02 24:00:00",
    "2026-03-02 12:00:00+25:00",
    "2026/03/02 12:00:00",
    "20260302T120000",
    "2026-03-02 12:00:00 BC",
    "0001-01-01 00:00:00",
    "1772424000",
]


@pytest.mark.parametrize("text", NOT_ISO_TIMESTAMPS)
def test_a_timestamp_that_is_not_an_iso_8601_instant_is_a_type_error_at_its_line(timestamps_night, text):
    line = NOT_ISO_TIMESTAMPS.index(text) + 3  # refund R<n>: line n + 2
    loaded = timestamps_night.loaded_keys("refunds", "_line")
    assert 2 in loaded and line not in loaded
    assert [e for e in timestamps_night.errors("refunds") if e["line"] == line] == [
        {
            "line": line,
            "column": "requested_at",
            "check": "type",
            "value": text.strip(),
            "message": f"requested_at must be an ISO 8601 timestamp, got '{text.strip()}'",
        }
    ]


# --- values out of range: quarantined, never a failed run -------------------------------------

OUT_OF_RANGE = {  # (export, column, text)
    "money over 16 integer digits": ("refunds", "refund_amount", "10000000000000000.00"),
    "sdkappid over INT64": ("usage", "sdkappid", "9223372036854775808"),
    "minutes over 12 integer digits": ("usage", "minutes", "1000000000000"),
    "gifted_minutes over INT64": ("purchases", "gifted_minutes", "99999999999999999999"),
}


@pytest.mark.parametrize("stem, column, text", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_number_out_of_its_columns_range_is_a_type_error_at_its_line(tmp_path, stem, column, text):
    builders = {"purchases": purchase, "usage": usage, "refunds": refund}
    key = EXPORTS[stem].key[0]
    rows = [builders[stem](**{key: "K1"}), builders[stem](**{key: "K2", column: text})]
    night = load_night(tmp_path, **({"purchases": [purchase()]} | {stem: rows}))
    assert night.loaded_keys(stem, key) == ["K1"]
    assert [(e["line"], e["column"], e["check"], e["value"]) for e in night.errors(stem)] == [(3, column, "type", text)]


def test_the_largest_amount_loads_exactly(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[purchase()],
        refunds=[refund(refund_cash_credit="9999999999999999.99", refund_amount="9999999999999999.99")],
    )
    assert night.errors("refunds") == []
    assert night.con.execute("SELECT CAST(refund_amount AS VARCHAR) FROM delivered_refunds").fetchall() == [
        ("9999999999999999.99",)
    ]
