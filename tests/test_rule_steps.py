"""The ten refund rules, file by file, at their edges (SPEC sections 3 and 4).

Each case runs one `sql/rules/<CODE>.sql` on fixture tables (tests/steps.py) and lists the
refunds it flags with their money at risk, DECIMAL(18,2) as text. Unless a case says
otherwise, order O1 of entity E1 (account A-E1) lists at 100.00 USD paid in cash and was
bought on 2026-03-01 10:00 billing time (Asia/Shanghai, UTC+8); the run is for as_of
2026-03-31. Timestamps without an offset are billing time. What needs the whole run (CSV in,
refund_flags and verdicts out, as_of visibility) stays in tests/test_rules.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from exports import status
from steps import flagged, moment, order, paid, pending, rejected, rule_hits, suspended, used, verdicts

from jobs.catalog import CATALOG
from jobs.config import Settings

FLAGGED = {"R1": "100.00"}
DAY_2 = "2026-03-02 12:00:00"
PAID_ON_DAY_3 = paid("R1", "O1", DAY_2, "2026-03-03 12:00:00")  # cut-off: 03-03 12:00
PAID_AFTER_AS_OF = paid("R1", "O1", DAY_2, "2026-04-01 12:00:00")  # seen pending on 03-31


def split_refund(cash, commission, free, *, status="paid") -> dict:
    """R1 of O1, paid back as these parts of cash, commission and free credit."""
    total = f"{Decimal(cash) + Decimal(commission) + Decimal(free):.2f}"
    return paid(
        "R1",
        "O1",
        DAY_2,
        amount=total,
        status=status,
        refund_cash_credit=cash,
        refund_commission_credit=commission,
        refund_free_credit=free,
    )


def split_order(order_id="O1", entity_id="E1", *, cash="60.00", commission="0.00", free="40.00") -> dict:
    """An order listing at 100.00 paid with these parts of cash, commission and free credit."""
    return order(order_id, entity_id, paid_cash_credit=cash, paid_commission_credit=commission, paid_free_credit=free)


# --- PAST_WINDOW: billing_day(requested_at) - billing_day(purchased_at) > N - 1 ------------


@pytest.mark.parametrize(
    ("bought", "refund", "expected"),
    [
        pytest.param("2026-03-01 10:00:00", paid("R1", "O1", "2026-03-05 23:59:30"), {}, id="last minute of day 5"),
        pytest.param(
            "2026-03-01 10:00:00", paid("R1", "O1", "2026-03-06 00:00:30"), FLAGGED, id="first minute of day 6"
        ),
        # 00:30 billing time is 16:30 UTC the day before: day 1 is still 2026-03-01.
        pytest.param(
            "2026-03-01T00:30:00+08:00",
            paid("R1", "O1", "2026-03-05T23:59:30+08:00"),
            {},
            id="bought 00:30 UTC+8, last minute of day 5",
        ),
        pytest.param(
            "2026-03-01T00:30:00+08:00",
            paid("R1", "O1", "2026-03-06T00:00:30+08:00"),
            FLAGGED,
            id="bought 00:30 UTC+8, first minute of day 6",
        ),
        pytest.param("2026-02-28T16:30:00Z", paid("R1", "O1", "2026-03-05T15:59:30Z"), {}, id="in UTC, day 5"),
        pytest.param("2026-02-28T16:30:00Z", paid("R1", "O1", "2026-03-05T16:00:30Z"), FLAGGED, id="in UTC, day 6"),
        pytest.param("2026-03-01 10:00:00", pending("R1", "O1", "2026-03-06 00:00:30"), FLAGGED, id="pending is live"),
        pytest.param("2026-03-01 10:00:00", rejected("R1", "O1", "2026-03-09 12:00:00"), {}, id="rejected is skipped"),
        pytest.param(
            "2026-03-01 10:00:00",
            paid("R1", "O1", "2026-03-06 12:00:00", amount="50.00"),
            {"R1": "50.00"},
            id="at risk: the refund_amount",
        ),
    ],
)
def test_past_window(bought, refund, expected):
    assert flagged(rule_hits("PAST_WINDOW", purchases=[order("O1", bought=bought)], refunds=[refund])) == expected


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        ("2026-03-03 23:59:30", {}),
        ("2026-03-04 00:00:30", {"R1": ("100.00", 4, 3)}),
    ],
)
def test_past_window_uses_the_configured_refund_window_days(requested_at, expected):
    found = rule_hits(
        "PAST_WINDOW",
        settings=Settings(refund_window_days=3),
        purchases=[order("O1")],
        refunds=[paid("R1", "O1", requested_at)],
    )
    assert {
        refund_id: (hit.amount_at_risk, hit.evidence["day_of_request"], hit.evidence["refund_window_days"])
        for refund_id, hit in found.items()
    } == expected


def test_past_window_evidence_counts_the_day_of_request_from_the_billing_day_of_purchase():
    found = rule_hits(
        "PAST_WINDOW",
        purchases=[order("O1", bought="2026-02-28T16:30:00Z")],
        refunds=[paid("R1", "O1", "2026-03-05T16:00:30Z")],
    )
    evidence = found["R1"].evidence
    assert (evidence["purchase_day"], evidence["request_day"]) == ("2026-03-01", "2026-03-06")
    assert (evidence["day_of_request"], evidence["refund_window_days"]) == (6, 5)
    assert moment(evidence["purchased_at"]) == moment("2026-03-01T00:30:00+08:00")


# --- MINUTES_USED: the order's usage with minutes > 0 before the cut-off ------------------


@pytest.mark.parametrize(
    ("refund", "usage", "expected"),
    [
        pytest.param(PAID_ON_DAY_3, [used("0.01", "2026-03-02 08:00:00")], FLAGGED, id="a hundredth of a minute"),
        pytest.param(PAID_ON_DAY_3, [used("0", "2026-03-02 08:00:00")], {}, id="zero minutes"),
        pytest.param(
            PAID_ON_DAY_3, [used("3", "2026-03-01 08:00:00")], FLAGGED, id="on the purchase day, before the purchase"
        ),
        pytest.param(PAID_ON_DAY_3, [used("10", "2026-03-03 11:59:59")], FLAGGED, id="between request and payout"),
        pytest.param(PAID_ON_DAY_3, [used("10", "2026-03-03 12:00:00")], {}, id="from the payout on"),
        pytest.param(
            pending("R1", "O1", DAY_2),
            [used("1", "2026-03-31 23:59:59")],
            FLAGGED,
            id="pending: up to the end of as_of",
        ),
        pytest.param(
            PAID_AFTER_AS_OF,
            [used("1", "2026-03-31 23:59:59")],
            FLAGGED,
            id="paid after as_of: seen pending, up to the end of as_of",
        ),
        pytest.param(
            PAID_AFTER_AS_OF, [used("1", "2026-04-01 08:00:00")], {}, id="paid after as_of: not after the end of as_of"
        ),
        pytest.param(
            PAID_ON_DAY_3,
            [used("10", "2026-03-02 08:00:00", "O2", sdkappid=1400000002)],
            {},
            id="another order's usage",
        ),
        pytest.param(PAID_ON_DAY_3, [used("25", "2026-03-02 08:00:00", "")], {}, id="free or pay-as-you-go"),
        pytest.param(rejected("R1", "O1", DAY_2), [used("10", "2026-03-02 08:00:00")], {}, id="rejected is skipped"),
    ],
)
def test_minutes_used(refund, usage, expected):
    found = rule_hits(
        "MINUTES_USED", purchases=[order("O1"), order("O2", sdkappid=1400000002)], refunds=[refund], usage=usage
    )
    assert flagged(found) == expected


@pytest.mark.parametrize(
    ("refund", "as_of", "cutoff_at"),
    [
        pytest.param(PAID_ON_DAY_3, date(2026, 3, 31), "2026-03-03T12:00:00+08:00", id="paid: processed_at"),
        pytest.param(
            pending("R1", "O1", DAY_2), date(2026, 3, 31), "2026-04-01T00:00:00+08:00", id="pending: the end of as_of"
        ),
        pytest.param(
            paid("R1", "O1", DAY_2, "2026-03-05 12:00:00"),
            date(2026, 3, 4),
            "2026-03-05T00:00:00+08:00",
            id="processed after as_of: the end of as_of",
        ),
    ],
)
def test_minutes_used_evidence_names_the_cut_off(refund, as_of, cutoff_at):
    found = rule_hits(
        "MINUTES_USED",
        as_of=as_of,
        purchases=[order("O1")],
        refunds=[refund],
        usage=[used("0.01", "2026-03-01 08:00:00")],
    )
    evidence = found["R1"].evidence
    assert (evidence["minutes_used"], evidence["usage_records"]) == (0.01, 1)
    assert moment(evidence["first_used_at"]) == moment("2026-03-01T08:00:00+08:00")
    assert moment(evidence["cutoff_at"]) == moment(cutoff_at)


# --- USAGE_AFTER_REFUND: a paid refund's order used from processed_at on ------------------


@pytest.mark.parametrize(
    ("refund", "usage", "expected"),
    [
        pytest.param(PAID_ON_DAY_3, [used("10", "2026-03-03 12:00:00")], FLAGGED, id="from the moment of payout"),
        pytest.param(PAID_ON_DAY_3, [used("10", "2026-03-03 11:59:59")], {}, id="a second before payout"),
        pytest.param(PAID_ON_DAY_3, [used("0", "2026-03-04 12:00:00")], {}, id="zero minutes"),
        pytest.param(PAID_ON_DAY_3, [used("10", "2026-03-04 12:00:00", "")], {}, id="free or pay-as-you-go"),
        pytest.param(pending("R1", "O1", DAY_2), [used("10", "2026-03-04 12:00:00")], {}, id="pending: no payout"),
        pytest.param(PAID_AFTER_AS_OF, [used("10", "2026-04-01 13:00:00")], {}, id="paid after as_of: seen pending"),
        pytest.param(
            rejected("R1", "O1", DAY_2, "2026-03-03 12:00:00", amount="100.00"),
            [used("10", "2026-03-04 12:00:00")],
            {},
            id="rejected is skipped",
        ),
    ],
)
def test_usage_after_refund(refund, usage, expected):
    found = rule_hits("USAGE_AFTER_REFUND", purchases=[order("O1")], refunds=[refund], usage=usage)
    assert flagged(found) == expected


def test_usage_after_refund_evidence_counts_the_minutes_after_payout():
    found = rule_hits(
        "USAGE_AFTER_REFUND",
        purchases=[order("O1")],
        refunds=[PAID_ON_DAY_3],
        usage=[used("10", "2026-03-03 12:00:00"), used("2.5", "2026-03-05 09:00:00", usage_id="U2")],
    )
    evidence = found["R1"].evidence
    assert (evidence["minutes_after_payout"], evidence["usage_records_after_payout"]) == (12.5, 2)
    assert moment(evidence["first_used_after_payout"]) == moment("2026-03-03T12:00:00+08:00")


# --- CONCURRENT_REFUND: an earlier live refund of the entity <= N - 1 billing days before --
# E1 holds O1 (account A1) and O2 (account A2); E2 holds O3.

ENTITY_ORDERS = [order("O1", account_id="A1"), order("O2", account_id="A2"), order("O3", "E2")]


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        pytest.param(
            [paid("R1", "O1", "2026-03-02 00:00:30"), paid("R2", "O2", "2026-03-06 23:59:30")],
            {"R2": "100.00"},
            id="4 billing days apart, almost 5 days",
        ),
        pytest.param(
            [paid("R1", "O1", "2026-03-02 23:59:30"), paid("R2", "O2", "2026-03-07 00:00:30")],
            {},
            id="5 billing days apart, just over 4 days",
        ),
        # 03-02 07:30 billing time is 03-01 in UTC: 4 billing days, 5 UTC days.
        pytest.param(
            [paid("R1", "O1", "2026-03-02 07:30:00"), paid("R2", "O2", "2026-03-06 23:30:00")],
            {"R2": "100.00"},
            id="4 billing days, 5 UTC days",
        ),
        pytest.param(
            [pending("R1", "O1", DAY_2), paid("R2", "O2", "2026-03-03 12:00:00", amount="40.00")],
            {"R2": "40.00"},
            id="a pending earlier refund; at risk: the refund_amount",
        ),
        pytest.param(
            [rejected("R1", "O1", DAY_2), paid("R2", "O2", "2026-03-03 12:00:00")], {}, id="a rejected earlier refund"
        ),
        pytest.param(
            [paid("R1", "O1", DAY_2), rejected("R2", "O2", "2026-03-03 12:00:00")], {}, id="a rejected later refund"
        ),
        pytest.param([paid("R1", "O1", DAY_2), paid("R2", "O3", "2026-03-03 12:00:00")], {}, id="another entity"),
        pytest.param(
            [paid("R7", "O1", DAY_2), paid("R3", "O2", DAY_2)],
            {"R7": "100.00"},
            id="equal requested_at: ordered by refund_id",
        ),
        pytest.param(
            [paid("R1", "O1", DAY_2), pending("R2", "O1", "2026-03-03 12:00:00")],
            {"R2": "100.00"},
            id="the same order, by the letter",
        ),
        pytest.param(
            [paid("R1", "O1", DAY_2), paid("R2", "O1", "2026-03-07 12:00:00")],
            {},
            id="the same order 5 billing days apart",
        ),
    ],
)
def test_concurrent_refund(refunds, expected):
    assert flagged(rule_hits("CONCURRENT_REFUND", purchases=ENTITY_ORDERS, refunds=refunds)) == expected


@pytest.mark.parametrize(
    ("second_at", "expected"),
    [
        ("2026-03-04 12:00:00", {"R2": "100.00"}),
        ("2026-03-05 12:00:00", {}),
    ],
)
def test_concurrent_refund_uses_the_configured_refund_window_days(second_at, expected):
    found = rule_hits(
        "CONCURRENT_REFUND",
        settings=Settings(refund_window_days=3),
        purchases=ENTITY_ORDERS,
        refunds=[paid("R1", "O1", DAY_2), paid("R2", "O2", second_at)],
    )
    assert flagged(found) == expected


@pytest.mark.parametrize(
    ("refunds", "earlier_refund_id", "days_apart"),
    [
        ([paid("R1", "O1", "2026-03-02 00:00:30"), paid("R2", "O2", "2026-03-06 23:59:30")], "R1", 4),
        ([paid("R3", "O2", DAY_2), paid("R2", "O1", DAY_2)], "R2", 0),
    ],
)
def test_concurrent_refund_evidence_names_the_latest_earlier_refund(refunds, earlier_refund_id, days_apart):
    [hit] = rule_hits("CONCURRENT_REFUND", purchases=ENTITY_ORDERS, refunds=refunds).values()
    assert (hit.evidence["earlier_refund_id"], hit.evidence["billing_days_apart"]) == (earlier_refund_id, days_apart)


# --- DUPLICATE_REFUND: an earlier live refund of the same order ---------------------------


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        pytest.param(
            [paid("R1", "O1", DAY_2), pending("R2", "O1", "2026-03-03 12:00:00")],
            {"R2": "100.00"},
            id="the later of two live refunds",
        ),
        pytest.param(
            [paid("R1", "O1", DAY_2), paid("R2", "O1", "2026-03-20 12:00:00", amount="60.00")],
            {"R2": "60.00"},
            id="beyond the refund window; at risk: the refund_amount",
        ),
        pytest.param(
            [paid("R2", "O1", DAY_2), paid("R1", "O1", DAY_2)],
            {"R2": "100.00"},
            id="equal requested_at: ordered by refund_id",
        ),
        pytest.param(
            [rejected("R1", "O1", DAY_2), paid("R2", "O1", "2026-03-03 12:00:00")], {}, id="a rejected earlier refund"
        ),
        pytest.param(
            [paid("R1", "O1", DAY_2), rejected("R2", "O1", "2026-03-03 12:00:00", amount="100.00")],
            {},
            id="a rejected later refund",
        ),
        pytest.param([paid("R1", "O1", DAY_2), paid("R2", "O2", "2026-03-03 12:00:00")], {}, id="another order"),
        pytest.param(
            [paid("R1", "O1", DAY_2), paid("R2", "O1", "2026-03-03 12:00:00"), paid("R3", "O1", "2026-03-04 12:00:00")],
            {"R2": "100.00", "R3": "100.00"},
            id="three refunds",
        ),
    ],
)
def test_duplicate_refund(refunds, expected):
    assert flagged(rule_hits("DUPLICATE_REFUND", purchases=ENTITY_ORDERS, refunds=refunds)) == expected


def test_duplicate_refund_evidence_names_the_first_refund():
    found = rule_hits(
        "DUPLICATE_REFUND",
        purchases=[order("O1")],
        refunds=[
            pending("R1", "O1", DAY_2),
            paid("R2", "O1", "2026-03-03 12:00:00"),
            paid("R3", "O1", "2026-03-04 12:00:00"),
        ],
    )
    evidence = found["R3"].evidence
    assert (evidence["first_refund_id"], evidence["first_status"], evidence["earlier_refund_ids"]) == (
        "R1",
        "pending",
        ["R1", "R2"],
    )


# --- ACCOUNT_SUSPENDED: disqualifying suspension at requested_at, or up to the cut-off -----
# R1 of O1 (account A1, entity E1) requested 03-02 12:00, paid 03-03 12:00; E1 also owns A2.


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param([suspended("A1", "2026-03-02 09:00:00")], FLAGGED, id="in force at the request"),
        pytest.param([suspended("A1", DAY_2)], FLAGGED, id="effective exactly at requested_at"),
        pytest.param(
            [suspended("A1", "2026-03-03 11:00:00", "illegal_activity")], FLAGGED, id="between request and payout"
        ),
        pytest.param([suspended("A1", "2026-03-03 12:00:00")], FLAGGED, id="effective exactly at the payout"),
        pytest.param([suspended("A1", "2026-03-03 12:00:01")], {}, id="a second after the payout"),
        pytest.param([suspended("A1", "2026-03-02 09:00:00", "overdue_payment")], {}, id="arrears do not disqualify"),
        pytest.param(
            [
                suspended("A1", "2026-03-01 11:00:00"),
                status(account_id="A1", status="active", reason="", effective_at="2026-03-02 08:00:00"),
            ],
            {},
            id="lifted before the request",
        ),
        pytest.param(
            [status(account_id="A1", status="closed", reason="content_violation", effective_at="2026-03-02 09:00:00")],
            {},
            id="closed, not suspended",
        ),
        pytest.param([suspended("A2", "2026-03-02 09:00:00")], {}, id="another account of the entity"),
    ],
)
def test_account_suspended(changes, expected):
    found = rule_hits("ACCOUNT_SUSPENDED", purchases=ENTITY_ORDERS[:2], refunds=[PAID_ON_DAY_3], account_status=changes)
    assert flagged(found) == expected


@pytest.mark.parametrize(
    ("refund", "effective_at", "expected"),
    [
        pytest.param(pending("R1", "O1", DAY_2), "2026-03-31 23:59:00", FLAGGED, id="pending: up to the end of as_of"),
        pytest.param(PAID_AFTER_AS_OF, "2026-03-31 23:59:00", FLAGGED, id="paid after as_of: seen pending"),
        pytest.param(rejected("R1", "O1", DAY_2), "2026-03-02 09:00:00", {}, id="rejected is skipped"),
    ],
)
def test_account_suspended_cut_off(refund, effective_at, expected):
    found = rule_hits(
        "ACCOUNT_SUSPENDED",
        purchases=ENTITY_ORDERS[:2],
        refunds=[refund],
        account_status=[suspended("A1", effective_at)],
    )
    assert flagged(found) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("security_risk", FLAGGED),
        ("content_violation", {}),
    ],
)
def test_account_suspended_uses_the_configured_disqualifying_reasons(reason, expected):
    found = rule_hits(
        "ACCOUNT_SUSPENDED",
        settings=Settings(disqualifying_suspension_reasons=("security_risk",)),
        purchases=ENTITY_ORDERS[:2],
        refunds=[PAID_ON_DAY_3],
        account_status=[suspended("A1", "2026-03-02 09:00:00", reason)],
    )
    assert flagged(found) == expected


@pytest.mark.parametrize(
    ("changes", "reason", "effective_at", "timing"),
    [
        (
            [suspended("A1", "2026-03-02 09:00:00")],
            "content_violation",
            "2026-03-02T09:00:00+08:00",
            "in force when the refund was requested",
        ),
        (
            [suspended("A1", "2026-03-03 11:00:00", "illegal_activity")],
            "illegal_activity",
            "2026-03-03T11:00:00+08:00",
            "became effective after the request, before the cut-off",
        ),
    ],
)
def test_account_suspended_evidence_names_the_suspension(changes, reason, effective_at, timing):
    evidence = rule_hits(
        "ACCOUNT_SUSPENDED", purchases=ENTITY_ORDERS[:2], refunds=[PAID_ON_DAY_3], account_status=changes
    )["R1"].evidence
    assert (evidence["suspension_reason"], evidence["timing"]) == (reason, timing)
    assert moment(evidence["suspension_effective_at"]) == moment(effective_at)


# --- COUPON_REFUNDED: refund_amount > refundable amount + 0.01; at risk: the excess --------

COUPON_ORDER = order("O1", coupon="10.00")  # refundable 90.00
DISCOUNT_ORDER = order("O1", discount="10.00")  # refundable 90.00


@pytest.mark.parametrize(
    ("bought", "refund", "expected"),
    [
        pytest.param(COUPON_ORDER, paid("R1", "O1", DAY_2, amount="90.00"), {}, id="exactly the refundable amount"),
        pytest.param(COUPON_ORDER, paid("R1", "O1", DAY_2, amount="90.01"), {}, id="one cent over"),
        pytest.param(COUPON_ORDER, paid("R1", "O1", DAY_2, amount="90.02"), {"R1": "0.02"}, id="two cents over"),
        pytest.param(
            DISCOUNT_ORDER, paid("R1", "O1", DAY_2, amount="100.00"), {"R1": "10.00"}, id="the discount paid back"
        ),
        pytest.param(COUPON_ORDER, pending("R1", "O1", DAY_2, amount="90.02"), {"R1": "0.02"}, id="pending is live"),
        pytest.param(COUPON_ORDER, rejected("R1", "O1", DAY_2, amount="100.00"), {}, id="rejected is skipped"),
    ],
)
def test_coupon_refunded(bought, refund, expected):
    assert flagged(rule_hits("COUPON_REFUNDED", purchases=[bought], refunds=[refund])) == expected


def test_coupon_refunded_evidence_shows_the_figures():
    evidence = rule_hits(
        "COUPON_REFUNDED", purchases=[DISCOUNT_ORDER], refunds=[paid("R1", "O1", DAY_2, amount="90.02")]
    )["R1"].evidence
    assert evidence == {
        "refund_amount": 90.02,
        "refundable_amount": 90,
        "list_price": 100,
        "discount_amount": 10,
        "coupon_amount": 0,
        "excess": 0.02,
    }


# --- PATH_MISMATCH: a refund part over the part paid with that type by > 0.01 --------------


@pytest.mark.parametrize(
    ("bought", "refund", "expected"),
    [
        pytest.param(split_order(), split_refund("60.00", "0.00", "40.00"), {}, id="back by the original path"),
        pytest.param(
            split_order(), split_refund("100.00", "0.00", "0.00"), {"R1": "40.00"}, id="free credit back as cash"
        ),
        pytest.param(split_order(), split_refund("60.01", "0.00", "40.00"), {}, id="one cent over in cash"),
        pytest.param(
            split_order(), split_refund("60.02", "0.00", "40.00"), {"R1": "0.02"}, id="two cents over in cash"
        ),
        pytest.param(
            split_order(), split_refund("30.00", "70.00", "0.00"), {"R1": "70.00"}, id="back as commission credit"
        ),
        pytest.param(
            split_order(cash="50.00", commission="25.00", free="25.00"),
            split_refund("60.00", "30.00", "10.00"),
            {"R1": "15.00"},
            id="two types over: the sum",
        ),
        pytest.param(
            split_order(),
            split_refund("100.00", "0.00", "0.00", status="pending") | {"processed_at": ""},
            {"R1": "40.00"},
            id="pending is live",
        ),
        pytest.param(
            split_order(), split_refund("100.00", "0.00", "0.00", status="rejected"), {}, id="rejected is skipped"
        ),
    ],
)
def test_path_mismatch(bought, refund, expected):
    assert flagged(rule_hits("PATH_MISMATCH", purchases=[bought], refunds=[refund])) == expected


def test_path_mismatch_evidence_shows_each_credit_type():
    evidence = rule_hits("PATH_MISMATCH", purchases=[split_order()], refunds=[split_refund("100.00", "0.00", "0.00")])[
        "R1"
    ].evidence
    assert evidence == {
        "refundable_by_credit_type": {"cash": 60, "commission": 0, "free": 40},
        "refunded_by_credit_type": {"cash": 100, "commission": 0, "free": 0},
        "exceeded_credit_types": ["cash"],
    }


# --- UNDER_REFUNDED: a paid refund < refundable - 0.01 with no policy flag -----------------


@pytest.mark.parametrize(
    ("refund", "usage", "expected"),
    [
        pytest.param(paid("R1", "O1", DAY_2, amount="99.98"), [], {"R1": "0.02"}, id="short by two cents"),
        pytest.param(paid("R1", "O1", DAY_2, amount="99.99"), [], {}, id="short by one cent"),
        pytest.param(paid("R1", "O1", DAY_2, amount="100.00"), [], {}, id="in full"),
        pytest.param(pending("R1", "O1", DAY_2, amount="50.00"), [], {}, id="pending: not paid yet"),
        pytest.param(
            paid("R1", "O1", DAY_2, "2026-04-01 12:00:00", amount="50.00"), [], {}, id="paid after as_of: seen pending"
        ),
        pytest.param(rejected("R1", "O1", DAY_2, amount="50.00"), [], {}, id="rejected"),
        pytest.param(paid("R1", "O1", "2026-03-06 12:00:00", amount="50.00"), [], {}, id="PAST_WINDOW fired"),
        pytest.param(
            paid("R1", "O1", DAY_2, amount="99.98"), [used("1", "2026-03-02 08:00:00")], {}, id="MINUTES_USED fired"
        ),
        pytest.param(
            paid("R1", "O2", DAY_2, amount="90.00", refund_cash_credit="70.00", refund_free_credit="20.00"),
            [],
            {},
            id="PATH_MISMATCH fired",
        ),
    ],
)
def test_under_refunded(refund, usage, expected):
    found = rule_hits("UNDER_REFUNDED", purchases=[order("O1"), split_order("O2", "E2")], refunds=[refund], usage=usage)
    assert flagged(found) == expected


def test_under_refunded_evidence_shows_the_shortfall():
    evidence = rule_hits("UNDER_REFUNDED", purchases=[order("O1")], refunds=[paid("R1", "O1", DAY_2, amount="99.98")])[
        "R1"
    ].evidence
    assert evidence == {"refund_amount": 99.98, "refundable_amount": 100, "shortfall": 0.02}


# --- REJECTED_WITH_PAYOUT: a rejected refund with refund_amount > 0.01 ----------------------


@pytest.mark.parametrize(
    ("refund", "expected"),
    [
        pytest.param(rejected("R1", "O1", DAY_2, amount="0.02"), {"R1": "0.02"}, id="two cents"),
        pytest.param(rejected("R1", "O1", DAY_2, amount="0.01"), {}, id="one cent"),
        pytest.param(rejected("R1", "O1", DAY_2), {}, id="nothing"),
        pytest.param(
            rejected("R1", "O1", DAY_2, "2026-03-31 23:59:59", amount="50.00"),
            {"R1": "50.00"},
            id="rejected in the last second of as_of",
        ),
        pytest.param(
            rejected("R1", "O1", DAY_2, "2026-04-01 00:00:00", amount="50.00"),
            {},
            id="rejected at the first moment after as_of: seen pending",
        ),
        pytest.param(paid("R1", "O1", DAY_2), {}, id="paid"),
        pytest.param(pending("R1", "O1", DAY_2), {}, id="pending"),
    ],
)
def test_rejected_with_payout(refund, expected):
    assert flagged(rule_hits("REJECTED_WITH_PAYOUT", purchases=[order("O1")], refunds=[refund])) == expected


# --- verdicts: every rule, then refund_verdicts (SPEC 4) ------------------------------------
# One order per refund: O<n> of entity E<n>.


def orders(*prices: dict) -> list[dict]:
    return [order(f"O{n}", f"E{n}") | overrides for n, overrides in enumerate(prices, start=1)]


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        pytest.param(
            dict(
                purchases=orders({}, {}, {}, {}),
                refunds=[
                    paid("R1", "O1", "2026-03-06 12:00:00"),
                    pending("R2", "O2", "2026-03-06 12:00:00"),
                    paid("R3", "O3", DAY_2),
                    rejected("R4", "O4", "2026-03-06 12:00:00"),
                ],
            ),
            {
                "R1": ("breach", ["PAST_WINDOW"], "100.00"),
                "R2": ("stop", ["PAST_WINDOW"], "100.00"),
                "R3": ("compliant", [], "0.00"),
                "R4": ("rejected", [], "0.00"),
            },
            id="breach, stop, compliant, rejected",
        ),
        pytest.param(
            dict(purchases=[DISCOUNT_ORDER], refunds=[paid("R1", "O1", "2026-03-06 12:00:00")]),
            {"R1": ("breach", ["PAST_WINDOW", "COUPON_REFUNDED", "PATH_MISMATCH"], "100.00")},
            id="a whole-refund code: the refund_amount",
        ),
        # Coupon 10.00 back (COUPON_REFUNDED 10.00); 40.00 free credit and the coupon's 10.00 back as
        # cash (PATH_MISMATCH 50.00).
        pytest.param(
            dict(purchases=[split_order(cash="50.00") | {"coupon_amount": "10.00"}], refunds=[paid("R1", "O1", DAY_2)]),
            {"R1": ("breach", ["COUPON_REFUNDED", "PATH_MISMATCH"], "50.00")},
            id="otherwise the largest flag amount",
        ),
        pytest.param(
            dict(
                purchases=[split_order()],
                refunds=[paid("R1", "O1", DAY_2, "2026-03-03 12:00:00")],
                usage=[used("10", "2026-03-04 12:00:00")],
            ),
            {"R1": ("breach", ["PATH_MISMATCH", "USAGE_AFTER_REFUND"], "100.00")},
            id="USAGE_AFTER_REFUND: its own amount is the refund_amount",
        ),
        pytest.param(
            dict(purchases=[order("O1")], refunds=[paid("R1", "O1", DAY_2, amount="99.98")]),
            {"R1": ("breach", ["UNDER_REFUNDED"], "0.02")},
            id="under-refunded: the shortfall",
        ),
        pytest.param(
            dict(purchases=[order("O1")], refunds=[paid("R1", "O1", "2026-03-06 12:00:00", amount="50.00")]),
            {"R1": ("breach", ["PAST_WINDOW"], "50.00")},
            id="a policy flag, not under-refunded",
        ),
        pytest.param(
            dict(purchases=[order("O1")], refunds=[rejected("R1", "O1", DAY_2, amount="0.02")]),
            {"R1": ("breach", ["REJECTED_WITH_PAYOUT"], "0.02")},
            id="rejected with payout",
        ),
        pytest.param(
            dict(purchases=[order("O1")], refunds=[rejected("R1", "O1", DAY_2, amount="0.01")]),
            {"R1": ("rejected", [], "0.00")},
            id="rejected, one cent paid out",
        ),
        pytest.param(
            dict(purchases=[order("O1")], refunds=[pending("R1", "O1", DAY_2)]),
            {"R1": ("compliant", [], "0.00")},
            id="pending without a flag",
        ),
        pytest.param(
            dict(
                purchases=[order("O1")], refunds=[paid("R1", "O1", DAY_2), pending("R2", "O1", "2026-03-03 12:00:00")]
            ),
            {"R1": ("compliant", [], "0.00"), "R2": ("stop", ["CONCURRENT_REFUND", "DUPLICATE_REFUND"], "100.00")},
            id="a second refund of the order",
        ),
        # Day 9, minutes used, account suspended, a live refund of the same order before it: all of
        # it would condemn a live refund, none of it a rejected one.
        pytest.param(
            dict(
                purchases=[order("O1")],
                usage=[used("10", "2026-03-02 08:00:00")],
                account_status=[suspended("A-E1", "2026-03-08 09:00:00")],
                refunds=[
                    paid("R1", "O1", "2026-03-01 12:00:00", "2026-03-01 18:00:00"),
                    rejected("R2", "O1", "2026-03-09 12:00:00"),
                ],
            ),
            {"R1": ("breach", ["USAGE_AFTER_REFUND"], "100.00"), "R2": ("rejected", [], "0.00")},
            id="a rejected refund is skipped by every other rule",
        ),
    ],
)
def test_verdicts(tables, expected):
    found = verdicts(**tables)
    assert {
        refund_id: (row["verdict"], row["rule_codes"], row["amount_at_risk"]) for refund_id, row in found.items()
    } == expected


def test_a_refund_processed_after_as_of_is_stopped_when_flagged():
    found = verdicts(
        as_of=date(2026, 3, 4),
        purchases=[order("O1")],
        usage=[used("10", "2026-03-02 08:00:00")],
        refunds=[paid("R1", "O1", "2026-03-03 12:00:00", "2026-03-05 12:00:00")],
    )
    assert found["R1"] == {"verdict": "stop", "rule_codes": ["MINUTES_USED"], "amount_at_risk": "100.00"}


def test_every_rule_of_the_catalogue_has_step_tests():
    tested = {name.removeprefix("test_").upper() for name in globals() if name.startswith("test_")}
    assert {rule.code for rule in CATALOG.rules} <= tested
