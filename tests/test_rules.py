"""The refund rules, reason by reason, as SPEC sections 3 and 4 state them.

Each test builds the smallest night that shows one behaviour: one or two orders of
100.00 USD bought on 2026-03-01 (billing time, Asia/Shanghai, UTC+8), their refunds,
usage and account status changes, run for as_of 2026-03-31 unless said otherwise.
Every fixture must load without a single quarantined row (see `night`), so a rule that
does not fire has truly been judged and not silently skipped.

Money is compared as the exact DECIMAL(18,2) text ('10.00'); timestamps in evidence are
compared as moments, whatever offset the engine prints them with.
"""

import sys
from datetime import date, datetime
from pathlib import Path

# The fixture builders in tests/exports.py are imported as a plain module.
sys.path.insert(0, str(Path(__file__).parent))
from exports import purchase, refund, run_night, status, usage  # noqa: E402

from jobs.config import Settings  # noqa: E402

SOURCES = ("purchases", "usage", "refunds", "account_status")


# --- helpers ---------------------------------------------------------------------------

def night(tmp_path, **exports):
    """Run the job on the exports and check that every row of them was loaded."""
    outcome = run_night(tmp_path, **exports)
    for source in SOURCES:
        assert outcome.errors(source) == [], f"fixture row quarantined in {source}"
    return outcome


def moment(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime ('Z' and '+08' both accepted)."""
    return datetime.fromisoformat(text)


def seen_status(outcome, refund_id: str) -> str:
    """The status the run gave a refund (section 3: processed after as_of -> pending)."""
    (value,) = outcome.con.execute(
        "SELECT refund_status FROM refund_verdicts WHERE refund_id = ?", [refund_id]
    ).fetchone()
    return value


def paid(refund_id="R1", order_id="O1", *, requested_at, processed_at, amount="100.00", **overrides):
    """A refund paid back in cash credit."""
    return refund(refund_id=refund_id, order_id=order_id, requested_at=requested_at,
                  processed_at=processed_at, refund_cash_credit=amount, refund_amount=amount,
                  **overrides)


def pending(refund_id="R1", order_id="O1", *, requested_at, amount="100.00"):
    """A refund not processed yet."""
    return paid(refund_id, order_id, requested_at=requested_at, processed_at="",
                amount=amount, status="pending")


def rejected(refund_id="R1", order_id="O1", *, requested_at, processed_at, amount="0.00"):
    """A refund declined; by default nothing was paid out."""
    return paid(refund_id, order_id, requested_at=requested_at, processed_at=processed_at,
                amount=amount, status="rejected")


def second_account_order(**overrides):
    """Order O2 of the same entity E1, bought through another account, A2."""
    return purchase(order_id="O2", account_id="A2", entity_id="E1", sdkappid=1400000002, **overrides)


# --- PAST_WINDOW -----------------------------------------------------------------------

def test_past_window_request_on_day_5_at_23_59_30_is_in_time(tmp_path):
    outcome = night(tmp_path, purchases=[purchase(purchased_at="2026-03-01 10:00:00")],
                    refunds=[paid(requested_at="2026-03-05 23:59:30", processed_at="2026-03-06 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.verdict("R1")["verdict"] == "compliant"


def test_past_window_request_on_day_6_at_00_00_30_is_flagged_with_day_of_request(tmp_path):
    outcome = night(tmp_path, purchases=[purchase(purchased_at="2026-03-01 10:00:00")],
                    refunds=[paid(requested_at="2026-03-06 00:00:30", processed_at="2026-03-06 12:00:00")])
    assert outcome.codes("R1") == {"PAST_WINDOW"}
    flag = outcome.flag("R1", "PAST_WINDOW")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["day_of_request"] == 6
    assert flag["evidence"]["refund_window_days"] == 5


def test_past_window_counts_from_the_billing_day_of_a_purchase_made_before_utc_midnight(tmp_path):
    # 2026-03-01 00:30 billing time is 2026-02-28 16:30 UTC: day 1 is still 2026-03-01.
    orders = [purchase(order_id="O1", account_id="A1", entity_id="E1", purchased_at="2026-03-01T00:30:00+08:00"),
              purchase(order_id="O2", account_id="A2", entity_id="E2", purchased_at="2026-03-01T00:30:00+08:00")]
    outcome = night(tmp_path, purchases=orders, refunds=[
        paid("R1", "O1", requested_at="2026-03-05T23:59:30+08:00", processed_at="2026-03-06T12:00:00+08:00"),
        paid("R2", "O2", requested_at="2026-03-06T00:00:30+08:00", processed_at="2026-03-06T12:00:00+08:00"),
    ])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"PAST_WINDOW"}
    evidence = outcome.flag("R2", "PAST_WINDOW")["evidence"]
    assert evidence["purchase_day"] == "2026-03-01"
    assert evidence["day_of_request"] == 6


def test_past_window_reads_a_utc_z_timestamp_in_billing_time(tmp_path):
    # The same moments as above, written in UTC.
    orders = [purchase(order_id="O1", account_id="A1", entity_id="E1", purchased_at="2026-02-28T16:30:00Z"),
              purchase(order_id="O2", account_id="A2", entity_id="E2", purchased_at="2026-02-28T16:30:00Z")]
    outcome = night(tmp_path, purchases=orders, refunds=[
        paid("R1", "O1", requested_at="2026-03-05T15:59:30Z", processed_at="2026-03-06T04:00:00Z"),
        paid("R2", "O2", requested_at="2026-03-05T16:00:30Z", processed_at="2026-03-06T04:00:00Z"),
    ])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"PAST_WINDOW"}
    evidence = outcome.flag("R2", "PAST_WINDOW")["evidence"]
    assert evidence["purchase_day"] == "2026-03-01"
    assert evidence["request_day"] == "2026-03-06"
    assert evidence["day_of_request"] == 6


def test_past_window_uses_the_configured_refund_window_days(tmp_path):
    orders = [purchase(order_id="O1", account_id="A1", entity_id="E1"),
              purchase(order_id="O2", account_id="A2", entity_id="E2")]
    outcome = night(tmp_path, purchases=orders, refunds=[
        paid("R1", "O1", requested_at="2026-03-03 23:59:30", processed_at="2026-03-05 12:00:00"),
        paid("R2", "O2", requested_at="2026-03-04 00:00:30", processed_at="2026-03-05 12:00:00"),
    ], settings=Settings(refund_window_days=3, max_bad_row_fraction=1.0))
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"PAST_WINDOW"}
    evidence = outcome.flag("R2", "PAST_WINDOW")["evidence"]
    assert evidence["day_of_request"] == 4
    assert evidence["refund_window_days"] == 3


# --- MINUTES_USED ----------------------------------------------------------------------

def test_minutes_used_fires_on_a_hundredth_of_a_minute(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(started_at="2026-03-02 08:00:00", minutes="0.01")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == {"MINUTES_USED"}
    flag = outcome.flag("R1", "MINUTES_USED")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["minutes_used"] == 0.01
    assert flag["evidence"]["usage_records"] == 1


def test_minutes_used_ignores_a_zero_minute_record(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(started_at="2026-03-02 08:00:00", minutes="0")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == set()


def test_minutes_used_counts_usage_earlier_on_the_purchase_day_than_the_purchase(tmp_path):
    # Section 2: a package covers usage since 00:00 of its purchase day; that usage is valid.
    outcome = night(tmp_path, purchases=[purchase(purchased_at="2026-03-01 10:00:00")],
                    usage=[usage(started_at="2026-03-01 08:00:00", minutes="3")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == {"MINUTES_USED"}
    evidence = outcome.flag("R1", "MINUTES_USED")["evidence"]
    assert evidence["minutes_used"] == 3
    assert moment(evidence["first_used_at"]) == moment("2026-03-01T08:00:00+08:00")


def test_minutes_used_counts_usage_between_request_and_payout(tmp_path):
    # The cut-off of a paid refund is its processed_at, not its requested_at.
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(started_at="2026-03-03 11:59:59", minutes="10")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == {"MINUTES_USED"}
    assert moment(outcome.flag("R1", "MINUTES_USED")["evidence"]["cutoff_at"]) == moment("2026-03-03T12:00:00+08:00")


def test_usage_from_payout_on_is_usage_after_refund_not_minutes_used(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(started_at="2026-03-03 12:00:00", minutes="10")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == {"USAGE_AFTER_REFUND"}
    flag = outcome.flag("R1", "USAGE_AFTER_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["minutes_after_payout"] == 10


def test_minutes_used_of_a_pending_refund_counts_usage_up_to_the_end_of_as_of(tmp_path):
    outcome = night(tmp_path, as_of=date(2026, 3, 31), purchases=[purchase()],
                    usage=[usage(started_at="2026-03-31 23:59:59", minutes="1")],
                    refunds=[pending(requested_at="2026-03-02 12:00:00")])
    assert outcome.codes("R1") == {"MINUTES_USED"}
    evidence = outcome.flag("R1", "MINUTES_USED")["evidence"]
    assert evidence["minutes_used"] == 1
    assert moment(evidence["cutoff_at"]) == moment("2026-04-01T00:00:00+08:00")
    assert outcome.verdict("R1")["verdict"] == "stop"


def test_minutes_used_ignores_usage_of_another_order(tmp_path):
    orders = [purchase(order_id="O1"), purchase(order_id="O2", sdkappid=1400000002)]
    outcome = night(tmp_path, purchases=orders,
                    usage=[usage(order_id="O2", sdkappid=1400000002, started_at="2026-03-02 08:00:00")],
                    refunds=[paid("R1", "O1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == set()


def test_minutes_used_ignores_free_and_pay_as_you_go_usage(tmp_path):
    # order_id empty: free monthly minutes or pay-as-you-go, not the package's own.
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(order_id="", started_at="2026-03-02 08:00:00", minutes="25")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == set()


# --- pending refunds -------------------------------------------------------------------

def test_a_refund_processed_after_as_of_is_seen_as_pending_and_stopped_when_flagged(tmp_path):
    outcome = night(tmp_path, as_of=date(2026, 3, 4), purchases=[purchase()],
                    usage=[usage(started_at="2026-03-02 08:00:00")],
                    refunds=[paid(requested_at="2026-03-03 12:00:00", processed_at="2026-03-05 12:00:00")])
    assert seen_status(outcome, "R1") == "pending"
    assert outcome.codes("R1") == {"MINUTES_USED"}
    assert moment(outcome.flag("R1", "MINUTES_USED")["evidence"]["cutoff_at"]) == moment("2026-03-05T00:00:00+08:00")
    assert outcome.verdict("R1") == {"verdict": "stop", "rule_codes": ["MINUTES_USED"], "amount_at_risk": "100.00"}


def test_a_pending_refund_with_no_flag_is_compliant(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()], refunds=[pending(requested_at="2026-03-02 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.verdict("R1") == {"verdict": "compliant", "rule_codes": [], "amount_at_risk": "0.00"}


# --- CONCURRENT_REFUND -----------------------------------------------------------------

def test_concurrent_refund_of_one_entity_through_two_accounts_four_billing_days_apart(tmp_path):
    # Four billing days apart although almost five days pass.
    outcome = night(tmp_path, purchases=[purchase(), second_account_order(purchased_at="2026-03-05 10:00:00")],
                    refunds=[paid("R1", "O1", requested_at="2026-03-02 00:00:30", processed_at="2026-03-02 12:00:00"),
                             paid("R2", "O2", requested_at="2026-03-06 23:59:30", processed_at="2026-03-07 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"CONCURRENT_REFUND"}
    flag = outcome.flag("R2", "CONCURRENT_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["earlier_refund_id"] == "R1"
    assert flag["evidence"]["billing_days_apart"] == 4


def test_concurrent_refund_not_fired_five_billing_days_apart(tmp_path):
    # Five billing days apart although just over four days pass.
    outcome = night(tmp_path, purchases=[purchase(), second_account_order(purchased_at="2026-03-05 10:00:00")],
                    refunds=[paid("R1", "O1", requested_at="2026-03-02 23:59:30", processed_at="2026-03-03 12:00:00"),
                             paid("R2", "O2", requested_at="2026-03-07 00:00:30", processed_at="2026-03-07 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == set()


def test_concurrent_refund_ignores_a_rejected_earlier_refund(tmp_path):
    outcome = night(tmp_path, purchases=[purchase(), second_account_order(purchased_at="2026-03-02 10:00:00")],
                    refunds=[rejected("R1", "O1", requested_at="2026-03-02 12:00:00",
                                      processed_at="2026-03-02 18:00:00"),
                             paid("R2", "O2", requested_at="2026-03-03 12:00:00", processed_at="2026-03-04 12:00:00")])
    assert outcome.codes("R2") == set()
    assert outcome.verdict("R1")["verdict"] == "rejected"


def test_concurrent_refund_ignores_refunds_of_another_entity(tmp_path):
    orders = [purchase(), purchase(order_id="O2", account_id="A2", entity_id="E2", sdkappid=1400000002)]
    outcome = night(tmp_path, purchases=orders,
                    refunds=[paid("R1", "O1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             paid("R2", "O2", requested_at="2026-03-03 12:00:00", processed_at="2026-03-04 12:00:00")])
    assert outcome.codes("R2") == set()


def test_concurrent_refund_breaks_equal_requested_at_by_refund_id(tmp_path):
    # R7 comes first in the file, but R3 < R7 orders it earlier: R7 gets the flag.
    outcome = night(tmp_path, purchases=[purchase(), second_account_order()],
                    refunds=[paid("R7", "O1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             paid("R3", "O2", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R3") == set()
    assert outcome.codes("R7") == {"CONCURRENT_REFUND"}
    assert outcome.flag("R7", "CONCURRENT_REFUND")["evidence"]["earlier_refund_id"] == "R3"


# --- DUPLICATE_REFUND ------------------------------------------------------------------

def test_duplicate_refund_flags_the_later_live_refund_of_one_order(tmp_path):
    # Same order, hence same entity, within the window: CONCURRENT_REFUND too, per the letter.
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid("R1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             pending("R2", requested_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"DUPLICATE_REFUND", "CONCURRENT_REFUND"}
    flag = outcome.flag("R2", "DUPLICATE_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["first_refund_id"] == "R1"
    assert outcome.verdict("R2")["verdict"] == "stop"


def test_duplicate_refund_beyond_the_window_is_not_concurrent(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid("R1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             paid("R2", requested_at="2026-03-20 12:00:00", processed_at="2026-03-21 12:00:00")])
    assert outcome.codes("R2") == {"DUPLICATE_REFUND", "PAST_WINDOW"}
    assert outcome.flag("R2", "DUPLICATE_REFUND")["evidence"]["first_refund_id"] == "R1"


def test_duplicate_refund_breaks_equal_requested_at_by_refund_id(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid("R2", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             paid("R1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"DUPLICATE_REFUND", "CONCURRENT_REFUND"}
    assert outcome.flag("R2", "DUPLICATE_REFUND")["evidence"]["first_refund_id"] == "R1"


# --- ACCOUNT_SUSPENDED -----------------------------------------------------------------

def suspension_night(tmp_path, changes, refunds=None, **kwargs):
    """O1 of account A1, refunded (by default requested 03-02 12:00, paid 03-03 12:00)."""
    refunds = refunds or [paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")]
    return night(tmp_path, purchases=[purchase()], refunds=refunds, account_status=changes, **kwargs)


def test_account_suspended_for_content_violation_at_request(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="content_violation",
                                                 effective_at="2026-03-02 09:00:00")])
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}
    flag = outcome.flag("R1", "ACCOUNT_SUSPENDED")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["suspension_reason"] == "content_violation"
    assert moment(flag["evidence"]["suspension_effective_at"]) == moment("2026-03-02T09:00:00+08:00")


def test_account_suspended_not_fired_for_an_arrears_suspension(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="overdue_payment",
                                                 effective_at="2026-03-02 09:00:00")])
    assert outcome.codes("R1") == set()


def test_account_suspended_not_fired_when_lifted_before_the_request(tmp_path):
    outcome = suspension_night(tmp_path, [
        status(status="suspended", reason="content_violation", effective_at="2026-03-01 11:00:00"),
        status(status="active", reason="", effective_at="2026-03-02 08:00:00"),
    ])
    assert outcome.codes("R1") == set()


def test_account_suspended_when_it_becomes_effective_between_request_and_payout(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="illegal_activity",
                                                 effective_at="2026-03-03 11:00:00")])
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}
    evidence = outcome.flag("R1", "ACCOUNT_SUSPENDED")["evidence"]
    assert evidence["suspension_reason"] == "illegal_activity"
    assert moment(evidence["suspension_effective_at"]) == moment("2026-03-03T11:00:00+08:00")


def test_account_suspended_not_fired_for_a_suspension_after_payout(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="content_violation",
                                                 effective_at="2026-03-03 12:00:01")])
    assert outcome.codes("R1") == set()


def test_account_suspended_of_a_pending_refund_up_to_the_end_of_as_of(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="content_violation",
                                                 effective_at="2026-03-31 23:59:00")],
                               refunds=[pending(requested_at="2026-03-02 12:00:00")], as_of=date(2026, 3, 31))
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}
    evidence = outcome.flag("R1", "ACCOUNT_SUSPENDED")["evidence"]
    assert moment(evidence["suspension_effective_at"]) == moment("2026-03-31T23:59:00+08:00")
    assert outcome.verdict("R1")["verdict"] == "stop"


def test_account_suspended_when_it_becomes_effective_at_the_moment_of_payout(tmp_path):
    outcome = suspension_night(tmp_path, [status(status="suspended", reason="content_violation",
                                                 effective_at="2026-03-03 12:00:00")])
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}


def test_account_suspended_uses_the_configured_disqualifying_reasons(tmp_path):
    orders = [purchase(order_id="O1", account_id="A1", entity_id="E1"),
              purchase(order_id="O2", account_id="A2", entity_id="E2", sdkappid=1400000002)]
    outcome = night(tmp_path, purchases=orders,
                    account_status=[
                        status(account_id="A1", reason="security_risk", effective_at="2026-03-02 09:00:00"),
                        status(account_id="A2", reason="content_violation", effective_at="2026-03-02 09:00:00"),
                    ],
                    refunds=[paid("R1", "O1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
                             paid("R2", "O2", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")],
                    settings=Settings(disqualifying_suspension_reasons=("security_risk",), max_bad_row_fraction=1.0))
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}
    assert outcome.flag("R1", "ACCOUNT_SUSPENDED")["evidence"]["suspension_reason"] == "security_risk"
    assert outcome.codes("R2") == set()


# --- COUPON_REFUNDED -------------------------------------------------------------------

def discount_order():
    """List 100.00, discount 10.00, 90.00 paid in cash: refundable 90.00."""
    return purchase(list_price="100.00", discount_amount="10.00", paid_cash_credit="90.00")


def coupon_order():
    """List 100.00, cash coupon 10.00, 90.00 paid in cash: refundable 90.00."""
    return purchase(list_price="100.00", coupon_amount="10.00", paid_cash_credit="90.00")


def test_coupon_refunded_not_fired_one_cent_over_refundable(tmp_path):
    outcome = night(tmp_path, purchases=[coupon_order()],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="90.01")])
    assert outcome.codes("R1") == set()


def test_coupon_refunded_two_cents_over_refundable(tmp_path):
    # The extra cents went back as cash credit, so PATH_MISMATCH fires as well.
    outcome = night(tmp_path, purchases=[coupon_order()],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="90.02")])
    assert outcome.codes("R1") == {"COUPON_REFUNDED", "PATH_MISMATCH"}
    flag = outcome.flag("R1", "COUPON_REFUNDED")
    assert flag["amount_at_risk"] == "0.02"
    assert flag["evidence"]["refundable_amount"] == 90
    assert flag["evidence"]["refund_amount"] == 90.02


def test_coupon_refunded_when_the_discount_is_paid_back(tmp_path):
    outcome = night(tmp_path, purchases=[discount_order()],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="100.00")])
    assert outcome.codes("R1") == {"COUPON_REFUNDED", "PATH_MISMATCH"}
    flag = outcome.flag("R1", "COUPON_REFUNDED")
    assert flag["amount_at_risk"] == "10.00"
    assert flag["evidence"]["discount_amount"] == 10


# --- PATH_MISMATCH ---------------------------------------------------------------------

def test_path_mismatch_when_free_credit_is_paid_back_as_cash_credit(tmp_path):
    outcome = night(tmp_path, purchases=[purchase(paid_cash_credit="60.00", paid_free_credit="40.00")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="100.00")])
    assert outcome.codes("R1") == {"PATH_MISMATCH"}
    flag = outcome.flag("R1", "PATH_MISMATCH")
    assert flag["amount_at_risk"] == "40.00"
    assert flag["evidence"]["refundable_by_credit_type"] == {"cash": 60, "commission": 0, "free": 40}
    assert flag["evidence"]["refunded_by_credit_type"] == {"cash": 100, "commission": 0, "free": 0}
    assert flag["evidence"]["exceeded_credit_types"] == ["cash"]


# --- UNDER_REFUNDED --------------------------------------------------------------------

def test_under_refunded_a_paid_refund_short_by_two_cents(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="99.98")])
    assert outcome.codes("R1") == {"UNDER_REFUNDED"}
    flag = outcome.flag("R1", "UNDER_REFUNDED")
    assert flag["amount_at_risk"] == "0.02"
    assert flag["evidence"]["shortfall"] == 0.02
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["UNDER_REFUNDED"], "amount_at_risk": "0.02"}


def test_under_refunded_not_fired_short_by_one_cent(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="99.99")])
    assert outcome.codes("R1") == set()


def test_under_refunded_not_fired_when_a_policy_rule_fired(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[paid(requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00",
                                  amount="50.00")])
    assert outcome.codes("R1") == {"PAST_WINDOW"}
    assert outcome.verdict("R1")["amount_at_risk"] == "50.00"


def test_under_refunded_not_fired_for_a_pending_refund(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[pending(requested_at="2026-03-02 12:00:00", amount="50.00")])
    assert outcome.codes("R1") == set()


# --- REJECTED_WITH_PAYOUT --------------------------------------------------------------

def test_rejected_with_payout_of_two_cents(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[rejected(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                      amount="0.02")])
    assert outcome.codes("R1") == {"REJECTED_WITH_PAYOUT"}
    assert outcome.flag("R1", "REJECTED_WITH_PAYOUT")["amount_at_risk"] == "0.02"
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["REJECTED_WITH_PAYOUT"],
                                     "amount_at_risk": "0.02"}


def test_rejected_with_payout_not_fired_for_one_cent_and_the_verdict_is_rejected(tmp_path):
    outcome = night(tmp_path, purchases=[purchase()],
                    refunds=[rejected(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                      amount="0.01")])
    assert outcome.codes("R1") == set()
    assert outcome.verdict("R1") == {"verdict": "rejected", "rule_codes": [], "amount_at_risk": "0.00"}


def test_a_rejected_refund_is_skipped_by_every_other_rule(tmp_path):
    # Day 9, minutes used, account suspended, a live refund of the same order before it:
    # all of it would condemn a live refund, none of it a rejected one.
    outcome = night(tmp_path, purchases=[purchase()],
                    usage=[usage(started_at="2026-03-02 08:00:00")],
                    account_status=[status(status="suspended", reason="content_violation",
                                           effective_at="2026-03-08 09:00:00")],
                    refunds=[paid("R1", requested_at="2026-03-01 12:00:00", processed_at="2026-03-01 18:00:00"),
                             rejected("R2", requested_at="2026-03-09 12:00:00", processed_at="2026-03-10 12:00:00")])
    assert outcome.codes("R2") == set()
    assert outcome.verdict("R2") == {"verdict": "rejected", "rule_codes": [], "amount_at_risk": "0.00"}


# --- verdicts --------------------------------------------------------------------------

def test_verdicts_breach_stop_compliant_rejected(tmp_path):
    orders = [purchase(order_id=f"O{n}", account_id=f"A{n}", entity_id=f"E{n}", sdkappid=1400000000 + n)
              for n in (1, 2, 3, 4)]
    outcome = night(tmp_path, purchases=orders, refunds=[
        paid("R1", "O1", requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00"),
        pending("R2", "O2", requested_at="2026-03-06 12:00:00"),
        paid("R3", "O3", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
        rejected("R4", "O4", requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00"),
    ])
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["PAST_WINDOW"], "amount_at_risk": "100.00"}
    assert outcome.verdict("R2") == {"verdict": "stop", "rule_codes": ["PAST_WINDOW"], "amount_at_risk": "100.00"}
    assert outcome.verdict("R3") == {"verdict": "compliant", "rule_codes": [], "amount_at_risk": "0.00"}
    assert outcome.verdict("R4") == {"verdict": "rejected", "rule_codes": [], "amount_at_risk": "0.00"}


def test_verdict_amount_is_the_refund_amount_when_a_whole_refund_code_fired(tmp_path):
    # COUPON_REFUNDED alone would put 10.00 at risk; PAST_WINDOW puts all 100.00 at risk.
    outcome = night(tmp_path, purchases=[discount_order()],
                    refunds=[paid(requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00",
                                  amount="100.00")])
    assert outcome.verdict("R1") == {"verdict": "breach",
                                     "rule_codes": ["PAST_WINDOW", "COUPON_REFUNDED", "PATH_MISMATCH"],
                                     "amount_at_risk": "100.00"}


def test_verdict_amount_is_the_largest_flag_amount_otherwise(tmp_path):
    # Coupon 10.00 paid back (COUPON_REFUNDED 10.00); 40.00 free credit and the coupon's
    # 10.00 paid back as cash (PATH_MISMATCH 50.00): the refund risks 50.00.
    order = purchase(list_price="100.00", coupon_amount="10.00", paid_cash_credit="50.00", paid_free_credit="40.00")
    outcome = night(tmp_path, purchases=[order],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="100.00")])
    assert outcome.flag("R1", "COUPON_REFUNDED")["amount_at_risk"] == "10.00"
    assert outcome.flag("R1", "PATH_MISMATCH")["amount_at_risk"] == "50.00"
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["COUPON_REFUNDED", "PATH_MISMATCH"],
                                     "amount_at_risk": "50.00"}


def test_verdict_amount_of_usage_after_refund_is_its_flag_amount(tmp_path):
    # USAGE_AFTER_REFUND is not a whole-refund code, but its own amount is the refund_amount.
    outcome = night(tmp_path, purchases=[purchase(paid_cash_credit="60.00", paid_free_credit="40.00")],
                    usage=[usage(started_at="2026-03-04 12:00:00")],
                    refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00",
                                  amount="100.00")])
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["PATH_MISMATCH", "USAGE_AFTER_REFUND"],
                                     "amount_at_risk": "100.00"}


# --- as_of -----------------------------------------------------------------------------

def test_a_refund_requested_after_as_of_is_not_visible(tmp_path):
    orders = [purchase(order_id="O1", account_id="A1", entity_id="E1"),
              purchase(order_id="O2", account_id="A2", entity_id="E2")]
    outcome = night(tmp_path, as_of=date(2026, 3, 3), purchases=orders, refunds=[
        pending("R1", "O1", requested_at="2026-03-03 23:59:59"),
        pending("R2", "O2", requested_at="2026-03-04 00:00:00"),
    ])
    assert outcome.verdict("R1")["verdict"] == "compliant"
    assert outcome.verdict("R2") is None
    assert outcome.codes("R2") == set()


def test_rerunning_an_earlier_as_of_sees_a_refund_paid_later_as_pending(tmp_path):
    exports = dict(purchases=[purchase()], usage=[usage(started_at="2026-03-02 08:00:00")],
                   refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-05 12:00:00")])
    later = night(tmp_path / "later", as_of=date(2026, 3, 31), **exports)
    earlier = night(tmp_path / "earlier", as_of=date(2026, 3, 4), **exports)
    assert seen_status(later, "R1") == "paid"
    assert later.verdict("R1")["verdict"] == "breach"
    assert seen_status(earlier, "R1") == "pending"
    assert earlier.verdict("R1") == {"verdict": "stop", "rule_codes": ["MINUTES_USED"], "amount_at_risk": "100.00"}


def test_records_after_as_of_are_ignored_not_errors(tmp_path):
    # A pending refund: usage and a suspension from 00:00 after as_of are not known tonight.
    outcome = night(tmp_path, as_of=date(2026, 3, 31), purchases=[purchase()],
                    usage=[usage(started_at="2026-04-01 00:00:00")],
                    account_status=[status(status="suspended", reason="content_violation",
                                           effective_at="2026-04-01 00:00:00")],
                    refunds=[pending(requested_at="2026-03-02 12:00:00")])
    assert outcome.codes("R1") == set()
    assert outcome.verdict("R1")["verdict"] == "compliant"
