"""The refund rules through the whole run: CSV exports in, refund_flags and refund_verdicts out.

One night per rule shows that the rule reaches the outputs, plus what only the whole run can
show: timestamps read from CSV in billing time, the status a refund is seen with on an
earlier as_of, records after as_of ignored. The rules' edges (the last minute of day 5,
one cent over, ties, cut-offs...) are tested file by file in tests/test_rule_steps.py.

Each night is the smallest that shows one behaviour: one or two orders of 100.00 USD bought
on 2026-03-01 (billing time, Asia/Shanghai, UTC+8), their refunds, usage and account status
changes, run for as_of 2026-03-31 unless said otherwise. Every fixture must load without a
single quarantined row (see `night`), so a rule that does not fire has truly been judged and
not silently skipped.

Money is compared as the exact DECIMAL(18,2) text ('10.00'); timestamps in evidence are
compared as moments, whatever offset the engine prints them with.
"""

from datetime import date, datetime

from exports import purchase, refund, run_night, status, usage

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
    return refund(
        refund_id=refund_id,
        order_id=order_id,
        requested_at=requested_at,
        processed_at=processed_at,
        refund_cash_credit=amount,
        refund_amount=amount,
        **overrides,
    )


def pending(refund_id="R1", order_id="O1", *, requested_at, amount="100.00"):
    """A refund not processed yet."""
    return paid(refund_id, order_id, requested_at=requested_at, processed_at="", amount=amount, status="pending")


def rejected(refund_id="R1", order_id="O1", *, requested_at, processed_at, amount="0.00"):
    """A refund declined; by default nothing was paid out."""
    return paid(
        refund_id, order_id, requested_at=requested_at, processed_at=processed_at, amount=amount, status="rejected"
    )


def second_account_order(**overrides):
    """Order O2 of the same entity E1, bought through another account, A2."""
    return purchase(order_id="O2", account_id="A2", entity_id="E1", sdkappid=1400000002, **overrides)


# --- PAST_WINDOW -----------------------------------------------------------------------


def test_past_window_reads_a_utc_z_timestamp_in_billing_time(tmp_path):
    # The same moments as above, written in UTC.
    orders = [
        purchase(order_id="O1", account_id="A1", entity_id="E1", purchased_at="2026-02-28T16:30:00Z"),
        purchase(order_id="O2", account_id="A2", entity_id="E2", purchased_at="2026-02-28T16:30:00Z"),
    ]
    outcome = night(
        tmp_path,
        purchases=orders,
        refunds=[
            paid("R1", "O1", requested_at="2026-03-05T15:59:30Z", processed_at="2026-03-06T04:00:00Z"),
            paid("R2", "O2", requested_at="2026-03-05T16:00:30Z", processed_at="2026-03-06T04:00:00Z"),
        ],
    )
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"PAST_WINDOW"}
    evidence = outcome.flag("R2", "PAST_WINDOW")["evidence"]
    assert evidence["purchase_day"] == "2026-03-01"
    assert evidence["request_day"] == "2026-03-06"
    assert evidence["day_of_request"] == 6


# --- MINUTES_USED ----------------------------------------------------------------------


def test_minutes_used_fires_on_a_hundredth_of_a_minute(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        usage=[usage(started_at="2026-03-02 08:00:00", minutes="0.01")],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")],
    )
    assert outcome.codes("R1") == {"MINUTES_USED"}
    flag = outcome.flag("R1", "MINUTES_USED")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["minutes_used"] == 0.01
    assert flag["evidence"]["usage_records"] == 1


def test_usage_from_payout_on_is_usage_after_refund_not_minutes_used(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        usage=[usage(started_at="2026-03-03 12:00:00", minutes="10")],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")],
    )
    assert outcome.codes("R1") == {"USAGE_AFTER_REFUND"}
    flag = outcome.flag("R1", "USAGE_AFTER_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["minutes_after_payout"] == 10


# --- pending refunds -------------------------------------------------------------------


def test_a_refund_processed_after_as_of_is_seen_as_pending_and_stopped_when_flagged(tmp_path):
    outcome = night(
        tmp_path,
        as_of=date(2026, 3, 4),
        purchases=[purchase()],
        usage=[usage(started_at="2026-03-02 08:00:00")],
        refunds=[paid(requested_at="2026-03-03 12:00:00", processed_at="2026-03-05 12:00:00")],
    )
    assert seen_status(outcome, "R1") == "pending"
    assert outcome.codes("R1") == {"MINUTES_USED"}
    assert moment(outcome.flag("R1", "MINUTES_USED")["evidence"]["cutoff_at"]) == moment("2026-03-05T00:00:00+08:00")
    assert outcome.verdict("R1") == {"verdict": "stop", "rule_codes": ["MINUTES_USED"], "amount_at_risk": "100.00"}


# --- CONCURRENT_REFUND -----------------------------------------------------------------


def test_concurrent_refund_of_one_entity_through_two_accounts_four_billing_days_apart(tmp_path):
    # Four billing days apart although almost five days pass.
    outcome = night(
        tmp_path,
        purchases=[purchase(), second_account_order(purchased_at="2026-03-05 10:00:00")],
        refunds=[
            paid("R1", "O1", requested_at="2026-03-02 00:00:30", processed_at="2026-03-02 12:00:00"),
            paid("R2", "O2", requested_at="2026-03-06 23:59:30", processed_at="2026-03-07 12:00:00"),
        ],
    )
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"CONCURRENT_REFUND"}
    flag = outcome.flag("R2", "CONCURRENT_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["earlier_refund_id"] == "R1"
    assert flag["evidence"]["billing_days_apart"] == 4


# --- DUPLICATE_REFUND ------------------------------------------------------------------


def test_duplicate_refund_flags_the_later_live_refund_of_one_order(tmp_path):
    # Same order, hence same entity, within the window: CONCURRENT_REFUND too, per the letter.
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        refunds=[
            paid("R1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
            pending("R2", requested_at="2026-03-03 12:00:00"),
        ],
    )
    assert outcome.codes("R1") == set()
    assert outcome.codes("R2") == {"DUPLICATE_REFUND", "CONCURRENT_REFUND"}
    flag = outcome.flag("R2", "DUPLICATE_REFUND")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["first_refund_id"] == "R1"
    assert outcome.verdict("R2")["verdict"] == "stop"


# --- ACCOUNT_SUSPENDED -----------------------------------------------------------------


def test_account_suspended_for_content_violation_at_request(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00")],
        account_status=[status(status="suspended", reason="content_violation", effective_at="2026-03-02 09:00:00")],
    )
    assert outcome.codes("R1") == {"ACCOUNT_SUSPENDED"}
    flag = outcome.flag("R1", "ACCOUNT_SUSPENDED")
    assert flag["amount_at_risk"] == "100.00"
    assert flag["evidence"]["suspension_reason"] == "content_violation"
    assert moment(flag["evidence"]["suspension_effective_at"]) == moment("2026-03-02T09:00:00+08:00")


# --- COUPON_REFUNDED -------------------------------------------------------------------


def coupon_order():
    """List 100.00, cash coupon 10.00, 90.00 paid in cash: refundable 90.00."""
    return purchase(list_price="100.00", coupon_amount="10.00", paid_cash_credit="90.00")


def test_coupon_refunded_two_cents_over_refundable(tmp_path):
    # The extra cents went back as cash credit, so PATH_MISMATCH fires as well.
    outcome = night(
        tmp_path,
        purchases=[coupon_order()],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00", amount="90.02")],
    )
    assert outcome.codes("R1") == {"COUPON_REFUNDED", "PATH_MISMATCH"}
    flag = outcome.flag("R1", "COUPON_REFUNDED")
    assert flag["amount_at_risk"] == "0.02"
    assert flag["evidence"]["refundable_amount"] == 90
    assert flag["evidence"]["refund_amount"] == 90.02


# --- PATH_MISMATCH ---------------------------------------------------------------------


def test_path_mismatch_when_free_credit_is_paid_back_as_cash_credit(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase(paid_cash_credit="60.00", paid_free_credit="40.00")],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00", amount="100.00")],
    )
    assert outcome.codes("R1") == {"PATH_MISMATCH"}
    flag = outcome.flag("R1", "PATH_MISMATCH")
    assert flag["amount_at_risk"] == "40.00"
    assert flag["evidence"]["refundable_by_credit_type"] == {"cash": 60, "commission": 0, "free": 40}
    assert flag["evidence"]["refunded_by_credit_type"] == {"cash": 100, "commission": 0, "free": 0}
    assert flag["evidence"]["exceeded_credit_types"] == ["cash"]


# --- UNDER_REFUNDED --------------------------------------------------------------------


def test_under_refunded_a_paid_refund_short_by_two_cents(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00", amount="99.98")],
    )
    assert outcome.codes("R1") == {"UNDER_REFUNDED"}
    flag = outcome.flag("R1", "UNDER_REFUNDED")
    assert flag["amount_at_risk"] == "0.02"
    assert flag["evidence"]["shortfall"] == 0.02
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["UNDER_REFUNDED"], "amount_at_risk": "0.02"}


# --- REJECTED_WITH_PAYOUT --------------------------------------------------------------


def test_rejected_with_payout_of_two_cents(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[purchase()],
        refunds=[rejected(requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00", amount="0.02")],
    )
    assert outcome.codes("R1") == {"REJECTED_WITH_PAYOUT"}
    assert outcome.flag("R1", "REJECTED_WITH_PAYOUT")["amount_at_risk"] == "0.02"
    assert outcome.verdict("R1") == {
        "verdict": "breach",
        "rule_codes": ["REJECTED_WITH_PAYOUT"],
        "amount_at_risk": "0.02",
    }


# --- verdicts --------------------------------------------------------------------------


def test_verdicts_breach_stop_compliant_rejected(tmp_path):
    orders = [
        purchase(order_id=f"O{n}", account_id=f"A{n}", entity_id=f"E{n}", sdkappid=1400000000 + n) for n in (1, 2, 3, 4)
    ]
    outcome = night(
        tmp_path,
        purchases=orders,
        refunds=[
            paid("R1", "O1", requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00"),
            pending("R2", "O2", requested_at="2026-03-06 12:00:00"),
            paid("R3", "O3", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
            rejected("R4", "O4", requested_at="2026-03-06 12:00:00", processed_at="2026-03-07 12:00:00"),
        ],
    )
    assert outcome.verdict("R1") == {"verdict": "breach", "rule_codes": ["PAST_WINDOW"], "amount_at_risk": "100.00"}
    assert outcome.verdict("R2") == {"verdict": "stop", "rule_codes": ["PAST_WINDOW"], "amount_at_risk": "100.00"}
    assert outcome.verdict("R3") == {"verdict": "compliant", "rule_codes": [], "amount_at_risk": "0.00"}
    assert outcome.verdict("R4") == {"verdict": "rejected", "rule_codes": [], "amount_at_risk": "0.00"}


# --- as_of -----------------------------------------------------------------------------


def test_a_refund_requested_after_as_of_is_not_visible(tmp_path):
    orders = [
        purchase(order_id="O1", account_id="A1", entity_id="E1"),
        purchase(order_id="O2", account_id="A2", entity_id="E2"),
    ]
    outcome = night(
        tmp_path,
        as_of=date(2026, 3, 3),
        purchases=orders,
        refunds=[
            pending("R1", "O1", requested_at="2026-03-03 23:59:59"),
            pending("R2", "O2", requested_at="2026-03-04 00:00:00"),
        ],
    )
    assert outcome.verdict("R1")["verdict"] == "compliant"
    assert outcome.verdict("R2") is None
    assert outcome.codes("R2") == set()


def test_rerunning_an_earlier_as_of_sees_a_refund_paid_later_as_pending(tmp_path):
    exports = dict(
        purchases=[purchase()],
        usage=[usage(started_at="2026-03-02 08:00:00")],
        refunds=[paid(requested_at="2026-03-02 12:00:00", processed_at="2026-03-05 12:00:00")],
    )
    later = night(tmp_path / "later", as_of=date(2026, 3, 31), **exports)
    earlier = night(tmp_path / "earlier", as_of=date(2026, 3, 4), **exports)
    assert seen_status(later, "R1") == "paid"
    assert later.verdict("R1")["verdict"] == "breach"
    assert seen_status(earlier, "R1") == "pending"
    assert earlier.verdict("R1") == {"verdict": "stop", "rule_codes": ["MINUTES_USED"], "amount_at_risk": "100.00"}


def test_records_after_as_of_are_ignored_not_errors(tmp_path):
    # A pending refund: usage and a suspension from 00:00 after as_of are not known tonight.
    outcome = night(
        tmp_path,
        as_of=date(2026, 3, 31),
        purchases=[purchase()],
        usage=[usage(started_at="2026-04-01 00:00:00")],
        account_status=[status(status="suspended", reason="content_violation", effective_at="2026-04-01 00:00:00")],
        refunds=[pending(requested_at="2026-03-02 12:00:00")],
    )
    assert outcome.codes("R1") == set()
    assert outcome.verdict("R1")["verdict"] == "compliant"
