"""The eight abuse signals, file by file, at their edges (SPEC section 5; docs/signals.md).

Each case runs one `sql/signals/<CODE>.sql` on fixture tables (tests/steps.py), after the model
and the linked groups are built from them, and lists the entities it fires for with their
refund_ids. Orders list at 100.00 USD paid in cash; the run is for as_of 2026-03-31; timestamps
without an offset are billing time (Asia/Shanghai, UTC+8), and the edges sit near midnight
billing time, where a day counted in UTC would give another answer. What needs the whole run
(CSV in, abuse_signals and cases out, as_of visibility, disabled signals) stays in
tests/test_signals.py.

Windows (SPEC 3, "the N days ending on as_of" = as_of - (N - 1) .. as_of): as_of 2026-03-31
- 89 = 2026-01-01, - 90 = 2025-12-31, - 179 = 2025-10-03, - 180 = 2025-10-02.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from exports import status
from steps import fired, moment, order, paid, pending, rejected, signal_hits, suspended, used

from jobs.catalog import CATALOG
from jobs.config import Settings, SignalSettings

LONG_AGO = "2025-09-01 10:00:00"  # bought before every window, so any refund date is valid


def signals(**values) -> Settings:
    """The default settings with these [signals] values."""
    return Settings(signals=SignalSettings(**values))


def orders(entity_id="E1", count=3, **overrides) -> list[dict]:
    """O1..O<count> of `entity_id`, bought long ago."""
    return [order(f"O{n}", entity_id, bought=LONG_AGO, **overrides) for n in range(1, count + 1)]


# --- SERIAL_REFUNDER: >= 3 live refunds requested in the 90 days ending on as_of ----------


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00"),
                pending("R2", "O2", "2026-03-10 12:00:00"),
                paid("R3", "O3", "2026-03-31 20:00:00", "2026-04-02 10:00:00"),
            ],
            {"E1": ["R1", "R2", "R3"]},
            id="three live refunds, one paid after as_of",
        ),
        pytest.param(
            [paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-10 12:00:00")],
            {},
            id="two live refunds",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00"),
                paid("R2", "O2", "2026-03-10 12:00:00"),
                rejected("R3", "O3", "2026-03-20 12:00:00"),
            ],
            {},
            id="a rejected third",
        ),
        # 00:30 billing time on 2026-01-01 is still 2025-12-31 in UTC.
        pytest.param(
            [
                paid("R1", "O1", "2026-01-01 00:30:00"),
                paid("R2", "O2", "2026-03-10 12:00:00"),
                paid("R3", "O3", "2026-03-20 12:00:00"),
            ],
            {"E1": ["R1", "R2", "R3"]},
            id="first day of the window, 00:30",
        ),
        # 23:30 billing time on 2025-12-31 is 15:30 UTC the same day.
        pytest.param(
            [
                paid("R1", "O1", "2025-12-31 23:30:00"),
                paid("R2", "O2", "2026-03-10 12:00:00"),
                paid("R3", "O3", "2026-03-20 12:00:00"),
            ],
            {},
            id="the 91st day back, 23:30",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00"),
                paid("R2", "O2", "2026-03-10 12:00:00"),
                pending("R3", "O3", "2026-04-01 00:30:00"),
            ],
            {},
            id="the day after as_of",
        ),
        pytest.param(
            [
                paid("R3", "O1", "2026-03-02 12:00:00"),
                paid("R2", "O2", "2026-03-10 12:00:00"),
                paid("R1", "O3", "2026-03-10 12:00:00"),
            ],
            {"E1": ["R3", "R1", "R2"]},
            id="refund_ids in request order, then by id",
        ),
    ],
)
def test_serial_refunder(refunds, expected):
    assert fired(signal_hits("SERIAL_REFUNDER", purchases=orders(), refunds=refunds)) == expected


def test_serial_refunder_spreads_over_entities_do_not_add_up():
    purchases = [order(f"O{n}", f"E{n}", bought=LONG_AGO) for n in (1, 2, 3)]
    refunds = [paid(f"R{n}", f"O{n}", f"2026-03-1{n} 12:00:00") for n in (1, 2, 3)]
    assert fired(signal_hits("SERIAL_REFUNDER", purchases=purchases, refunds=refunds)) == {}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(signals(serial_refunder_min_refunds=2), {"E1": (["R1", "R2"], 2, 2, 90)}, id="threshold 2"),
        pytest.param(
            signals(serial_refunder_min_refunds=2, serial_refunder_window_days=21),
            {},
            id="threshold 2, a 21-day window",
        ),
    ],
)
def test_serial_refunder_settings(settings, expected):
    found = signal_hits(
        "SERIAL_REFUNDER",
        settings=settings,
        purchases=orders(),
        refunds=[paid("R1", "O1", "2026-03-10 12:00:00"), paid("R2", "O2", "2026-03-20 12:00:00")],
    )
    assert {
        entity_id: (
            hit.refund_ids,
            hit.evidence["live_refunds"],
            hit.evidence["threshold"],
            hit.evidence["window_days"],
        )
        for entity_id, hit in found.items()
    } == expected


def test_serial_refunder_evidence_lists_the_refunds():
    evidence = signal_hits(
        "SERIAL_REFUNDER",
        purchases=orders(),
        refunds=[
            paid("R1", "O1", "2026-01-01 00:30:00"),
            pending("R2", "O2", "2026-03-10 12:00:00"),
            paid("R3", "O3", "2026-03-20 12:00:00"),
        ],
    )["E1"].evidence
    assert (evidence["live_refunds"], evidence["threshold"], evidence["window_days"]) == (3, 3, 90)
    assert [(item["refund_id"], item["request_day"], item["status"]) for item in evidence["refunds"]] == [
        ("R1", "2026-01-01", "paid"),
        ("R2", "2026-03-10", "pending"),
        ("R3", "2026-03-20", "paid"),
    ]


# --- REFUND_CYCLE: >= 2 live refunds each followed by a repurchase within 7 billing days ---
# Cycle 1: O1 (call) refunded 03-02 12:00, O2 (call) bought 03-09 10:00 (the 7th day after).
# Cycle 2: O2 refunded 03-10 07:30 (23:30 UTC the day before), then O3 bought as given.


def cycles(third_bought, *, third_product="call", third_entity="E1", second=paid) -> dict:
    return dict(
        purchases=[
            order("O1", bought="2026-03-01 10:00:00"),
            order("O2", bought="2026-03-09 10:00:00"),
            order("O3", third_entity, bought=third_bought, product=third_product),
        ],
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), second("R2", "O2", "2026-03-10 07:30:00")],
    )


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        pytest.param(cycles("2026-03-11 10:00:00"), {"E1": ["R1", "R2"]}, id="two cycles"),
        pytest.param(
            cycles("2026-03-17 23:30:00"),
            {"E1": ["R1", "R2"]},
            id="repurchase on the 7th billing day, 23:30 (8 UTC days)",
        ),
        pytest.param(cycles("2026-03-18 00:30:00"), {}, id="repurchase on the 8th billing day, 00:30"),
        pytest.param(cycles("2026-03-11 10:00:00", third_product="live"), {}, id="another product"),
        pytest.param(cycles("2026-03-11 10:00:00", third_entity="E2"), {}, id="bought by another entity"),
        pytest.param(cycles("2026-03-10 07:00:00"), {}, id="bought half an hour before the request"),
        pytest.param(cycles("2026-03-10 07:30:00"), {}, id="bought at the moment of the request"),
        pytest.param(cycles("2026-03-11 10:00:00", second=rejected), {}, id="the second refund rejected"),
        pytest.param(cycles("2026-03-11 10:00:00", second=pending), {"E1": ["R1", "R2"]}, id="the second pending"),
    ],
)
def test_refund_cycle(tables, expected):
    assert fired(signal_hits("REFUND_CYCLE", **tables)) == expected


@pytest.mark.parametrize(
    ("as_of", "settings", "expected"),
    [
        # as_of - 179 = 2026-03-02, R1's billing day; then 2026-03-03.
        pytest.param(date(2026, 8, 28), signals(), {"E1": ["R1", "R2"]}, id="first refund on the window's first day"),
        pytest.param(date(2026, 8, 29), signals(), {}, id="first refund the day before the window"),
        pytest.param(date(2026, 8, 29), signals(refund_cycle_min_cycles=1), {"E1": ["R2"]}, id="threshold 1"),
        pytest.param(
            date(2026, 3, 31),
            signals(refund_cycle_min_cycles=1, refund_cycle_max_days_to_repurchase=6),
            {"E1": ["R2"]},
            id="threshold 1, repurchase within 6 days",
        ),
    ],
)
def test_refund_cycle_window_and_settings(as_of, settings, expected):
    found = signal_hits("REFUND_CYCLE", as_of=as_of, settings=settings, **cycles("2026-03-11 10:00:00"))
    assert fired(found) == expected


def test_refund_cycle_evidence_names_each_repurchase():
    evidence = signal_hits("REFUND_CYCLE", **cycles("2026-03-17 23:30:00"))["E1"].evidence
    assert (evidence["cycles"], evidence["threshold"]) == (2, 2)
    assert [
        (item["refund_id"], item["repurchase_order_id"], item["days_to_repurchase"]) for item in evidence["refunds"]
    ] == [("R1", "O2", 7), ("R2", "O3", 7)]


# --- PROMO_REFUNDS: >= 2 distinct discounted or couponed orders with live refunds in 180 days

PROMO_ORDERS = [
    order("O1", bought=LONG_AGO, discount="10.00"),
    order("O2", bought=LONG_AGO, coupon="5.00"),
    order("O3", bought=LONG_AGO),
    order("O4", bought=LONG_AGO, discount="0.01"),
]


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"),
                pending("R2", "O2", "2026-03-20 12:00:00", amount="95.00"),
            ],
            {"E1": ["R1", "R2"]},
            id="a discounted and a couponed order",
        ),
        pytest.param(
            [paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"), paid("R3", "O3", "2026-03-20 12:00:00")],
            {},
            id="one promo order and a plain one",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"),
                paid("R4", "O4", "2026-03-20 12:00:00", amount="99.99"),
            ],
            {"E1": ["R1", "R4"]},
            id="a discount of one cent counts",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"),
                pending("R2", "O1", "2026-03-03 12:00:00", amount="90.00"),
            ],
            {},
            id="two refunds of one order",
        ),
        pytest.param(
            [paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"), rejected("R2", "O2", "2026-03-20 12:00:00")],
            {},
            id="a rejected refund",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2025-10-03 00:30:00", amount="90.00"),
                paid("R2", "O2", "2026-03-20 12:00:00", amount="95.00"),
            ],
            {"E1": ["R1", "R2"]},
            id="first day of the 180-day window, 00:30",
        ),
        pytest.param(
            [
                paid("R1", "O1", "2025-10-02 23:30:00", amount="90.00"),
                paid("R2", "O2", "2026-03-20 12:00:00", amount="95.00"),
            ],
            {},
            id="the 181st day back, 23:30",
        ),
    ],
)
def test_promo_refunds(refunds, expected):
    assert fired(signal_hits("PROMO_REFUNDS", purchases=PROMO_ORDERS, refunds=refunds)) == expected


def test_promo_refunds_threshold_is_a_setting():
    refunds = [
        paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"),
        paid("R2", "O2", "2026-03-20 12:00:00", amount="95.00"),
    ]
    found = signal_hits(
        "PROMO_REFUNDS", settings=signals(promo_refunds_min_orders=3), purchases=PROMO_ORDERS, refunds=refunds
    )
    assert fired(found) == {}


# --- REFUND_BEFORE_SUSPENSION: a suspension after a live refund, within 7 billing days ------
# E1 owns A1 (O1, refunded 03-02 07:30 = 03-01 23:30 UTC) and A2 (O2); E2 owns A-E2 (O3).

TWO_ACCOUNTS = [order("O1", account_id="A1"), order("O2", account_id="A2"), order("O3", "E2")]
REFUND_ON_DAY_2 = paid("R1", "O1", "2026-03-02 07:30:00")


@pytest.mark.parametrize(
    ("refund", "change", "expected"),
    [
        pytest.param(
            REFUND_ON_DAY_2, suspended("A2", "2026-03-09 23:30:00"), {"E1": ["R1"]}, id="the 7th billing day, 23:30"
        ),
        pytest.param(REFUND_ON_DAY_2, suspended("A2", "2026-03-10 00:30:00"), {}, id="the 8th billing day, 00:30"),
        pytest.param(
            REFUND_ON_DAY_2, suspended("A1", "2026-03-03 12:00:00"), {"E1": ["R1"]}, id="the refunded account"
        ),
        pytest.param(REFUND_ON_DAY_2, suspended("A-E2", "2026-03-03 12:00:00"), {}, id="another entity's account"),
        pytest.param(REFUND_ON_DAY_2, suspended("A2", "2026-03-03 12:00:00", "overdue_payment"), {}, id="arrears"),
        pytest.param(REFUND_ON_DAY_2, suspended("A2", "2026-03-02 07:00:00"), {}, id="before the request"),
        pytest.param(REFUND_ON_DAY_2, suspended("A2", "2026-03-02 07:30:00"), {}, id="at the moment of the request"),
        pytest.param(
            rejected("R1", "O1", "2026-03-02 07:30:00"),
            suspended("A2", "2026-03-03 12:00:00"),
            {},
            id="a rejected refund",
        ),
        pytest.param(
            pending("R1", "O1", "2026-03-02 07:30:00"),
            suspended("A2", "2026-03-03 12:00:00"),
            {"E1": ["R1"]},
            id="a pending refund",
        ),
    ],
)
def test_refund_before_suspension(refund, change, expected):
    found = signal_hits("REFUND_BEFORE_SUSPENSION", purchases=TWO_ACCOUNTS, refunds=[refund], account_status=[change])
    assert fired(found) == expected


def test_refund_before_suspension_days_are_a_setting():
    found = signal_hits(
        "REFUND_BEFORE_SUSPENSION",
        settings=signals(refund_before_suspension_max_days=3),
        purchases=TWO_ACCOUNTS,
        refunds=[REFUND_ON_DAY_2],
        account_status=[suspended("A2", "2026-03-06 12:00:00")],
    )
    assert fired(found) == {}


def test_refund_before_suspension_evidence_names_the_suspension():
    [suspension] = signal_hits(
        "REFUND_BEFORE_SUSPENSION",
        purchases=TWO_ACCOUNTS,
        refunds=[REFUND_ON_DAY_2],
        account_status=[suspended("A2", "2026-03-09 23:30:00")],
    )["E1"].evidence["suspensions"]
    assert (
        suspension["refund_id"],
        suspension["account_id"],
        suspension["reason"],
        suspension["days_after_request"],
    ) == ("R1", "A2", "content_violation", 7)
    assert moment(suspension["effective_at"]) == moment("2026-03-09T23:30:00+08:00")


# --- LINKED_ENTITIES: two live refunds of different linked entities <= N - 1 days apart -----
# EA and EB share FP1, EB and EC share FP2 (so EA and EC are linked through EB); ED is alone.

FP1 = "fp-card-1111-2222-3333"
FP2 = "fp-wallet-4444-5555-6666"
CHAIN = [
    order("OA", "EA", fingerprint=FP1, bought=LONG_AGO),
    order("OB", "EB", fingerprint=FP1, bought=LONG_AGO),
    order("OB2", "EB", fingerprint=FP2, bought=LONG_AGO),
    order("OC", "EC", fingerprint=FP2, bought=LONG_AGO),
    order("OD", "ED", fingerprint="fp-alone-7777-8888", bought=LONG_AGO),
]
WHOLE_CHAIN = ["EA", "EB", "EC"]


@pytest.mark.parametrize(
    ("refunds", "expected"),
    [
        # 03-02 07:30 billing is 03-01 in UTC; 03-06 23:30 billing is 03-06 in UTC.
        pytest.param(
            [paid("RA", "OA", "2026-03-02 07:30:00"), paid("RC", "OC", "2026-03-06 23:30:00")],
            {entity: ["RA", "RC"] for entity in WHOLE_CHAIN},
            id="4 billing days apart, through a chain",
        ),
        pytest.param(
            [paid("RA", "OA", "2026-03-02 07:30:00"), paid("RC", "OC", "2026-03-07 00:30:00")],
            {},
            id="5 billing days apart",
        ),
        pytest.param(
            [paid("RA", "OA", "2026-03-02 12:00:00"), paid("RD", "OD", "2026-03-02 13:00:00")],
            {},
            id="an entity outside the group",
        ),
        pytest.param(
            [paid("RB", "OB", "2026-03-02 12:00:00"), paid("RB2", "OB2", "2026-03-03 12:00:00")],
            {},
            id="two refunds of one entity",
        ),
        pytest.param(
            [rejected("RA", "OA", "2026-03-02 12:00:00"), paid("RB", "OB", "2026-03-03 12:00:00")],
            {},
            id="a rejected refund",
        ),
        pytest.param(
            [paid("RA", "OA", "2025-10-03 00:30:00"), pending("RB", "OB", "2025-10-04 12:00:00")],
            {entity: ["RA", "RB"] for entity in WHOLE_CHAIN},
            id="first day of the 180-day window, 00:30",
        ),
        pytest.param(
            [paid("RA", "OA", "2025-10-02 23:30:00"), paid("RB", "OB", "2025-10-03 00:30:00")],
            {},
            id="one refund the 181st day back, 23:30",
        ),
    ],
)
def test_linked_entities(refunds, expected):
    assert fired(signal_hits("LINKED_ENTITIES", purchases=CHAIN, refunds=refunds)) == expected


def shared_by_three(fingerprint="fp-marketplace-9999-0000") -> list[dict]:
    return [order(f"O{n}", f"E{n}", fingerprint=fingerprint) for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("purchases", "settings", "expected"),
    [
        pytest.param(
            shared_by_three(),
            signals(linked_fingerprint_max_entities=3),
            {entity: ["R1", "R2"] for entity in ("E1", "E2", "E3")},
            id="shared by exactly the limit: links",
        ),
        pytest.param(
            shared_by_three(),
            signals(linked_fingerprint_max_entities=2),
            {},
            id="shared by more than the limit: does not link",
        ),
        pytest.param(shared_by_three(""), signals(), {}, id="no fingerprint: no link"),
    ],
)
def test_linked_entities_linking(purchases, settings, expected):
    found = signal_hits(
        "LINKED_ENTITIES",
        settings=settings,
        purchases=purchases,
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-03 12:00:00")],
    )
    assert fired(found) == expected


def test_a_fingerprint_shared_by_exactly_the_limit_is_evidence_of_the_link():
    found = signal_hits(
        "LINKED_ENTITIES",
        settings=signals(linked_fingerprint_max_entities=3),
        purchases=shared_by_three(),
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-03 12:00:00")],
    )
    [shared] = found["E1"].evidence["shared_fingerprints"]
    assert shared["entity_ids"] == ["E1", "E2", "E3"]


def test_linked_entities_evidence_shows_the_group_and_masked_fingerprints():
    evidence = signal_hits(
        "LINKED_ENTITIES",
        purchases=CHAIN,
        refunds=[paid("RA", "OA", "2026-03-02 07:30:00"), paid("RC", "OC", "2026-03-06 23:30:00")],
    )["EB"].evidence
    assert evidence["group_entity_ids"] == WHOLE_CHAIN
    [pair] = evidence["refund_pairs"]
    assert (pair["first_refund_id"], pair["second_refund_id"], pair["billing_days_apart"]) == ("RA", "RC", 4)
    assert [item["entity_ids"] for item in evidence["shared_fingerprints"]] in (
        [["EA", "EB"], ["EB", "EC"]],
        [["EB", "EC"], ["EA", "EB"]],
    )
    assert FP1 not in str(evidence) and FP2 not in str(evidence)


# --- LINKED_TO_SUSPENDED: another account of the entity or group suspended at as_of -------
# E1 refunds O1 (account A1) and also owns A2; E2 (account A-E2) shares FP1 with E1.

LINKED_ACCOUNTS = [
    order("O1", account_id="A1", fingerprint=FP1, bought=LONG_AGO),
    order("O2", account_id="A2", bought=LONG_AGO),
    order("O3", "E2", fingerprint=FP1, bought=LONG_AGO),
]


@pytest.mark.parametrize(
    ("refund", "changes", "expected"),
    [
        pytest.param(
            paid("R1", "O1", "2026-03-02 12:00:00"),
            [suspended("A2", "2026-03-20 12:00:00", "illegal_activity")],
            {"E1": ["R1"]},
            id="another account of the entity",
        ),
        pytest.param(
            paid("R1", "O1", "2026-03-02 12:00:00"),
            [suspended("A-E2", "2026-03-20 12:00:00")],
            {"E1": ["R1"]},
            id="an account of a linked entity",
        ),
        pytest.param(
            paid("R1", "O1", "2026-03-02 12:00:00"),
            [suspended("A1", "2026-03-20 12:00:00")],
            {},
            id="the refunded account itself",
        ),
        pytest.param(
            paid("R1", "O1", "2026-03-02 12:00:00"),
            [suspended("A2", "2026-03-20 12:00:00", "overdue_payment")],
            {},
            id="arrears",
        ),
        pytest.param(
            paid("R1", "O1", "2026-03-02 12:00:00"),
            [
                suspended("A2", "2026-03-20 12:00:00"),
                status(account_id="A2", status="active", reason="", effective_at="2026-03-25 12:00:00"),
            ],
            {},
            id="lifted by as_of",
        ),
        pytest.param(
            rejected("R1", "O1", "2026-03-02 12:00:00"),
            [suspended("A2", "2026-03-20 12:00:00")],
            {},
            id="a rejected refund",
        ),
        pytest.param(
            paid("R1", "O1", "2025-10-03 00:30:00"),
            [suspended("A2", "2026-03-20 12:00:00")],
            {"E1": ["R1"]},
            id="refund on the first day of the 180-day window, 00:30",
        ),
        pytest.param(
            paid("R1", "O1", "2025-10-02 23:30:00"),
            [suspended("A2", "2026-03-20 12:00:00")],
            {},
            id="refund on the 181st day back, 23:30",
        ),
    ],
)
def test_linked_to_suspended(refund, changes, expected):
    found = signal_hits("LINKED_TO_SUSPENDED", purchases=LINKED_ACCOUNTS, refunds=[refund], account_status=changes)
    assert fired(found) == expected


def test_linked_to_suspended_evidence_names_the_suspended_account():
    evidence = signal_hits(
        "LINKED_TO_SUSPENDED",
        purchases=LINKED_ACCOUNTS,
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00")],
        account_status=[suspended("A-E2", "2026-03-20 12:00:00", "illegal_activity")],
    )["E1"].evidence
    [account] = evidence["suspended_accounts"]
    assert (account["account_id"], account["entity_id"], account["reason"]) == ("A-E2", "E2", "illegal_activity")
    assert evidence["refunded_accounts"] == ["A1"]


# --- USAGE_SHIFT: >= 500 free or pay-as-you-go minutes while the package stayed unused ------
# O1 (SDKAppID 1400000001) bought 03-01 10:00 and refunded 03-03 12:00; U1 300 free minutes at 03-01 11:00.


def free(minutes, started_at, usage_id="U2", sdkappid=1400000001) -> dict:
    return used(minutes, started_at, "", usage_id=usage_id, sdkappid=sdkappid)


@pytest.mark.parametrize(
    ("usage", "refund", "expected"),
    [
        pytest.param([free("200", "2026-03-02 20:00:00")], "paid", {"E1": ["R1"]}, id="500 minutes"),
        pytest.param([free("199.99", "2026-03-02 20:00:00")], "paid", {}, id="499.99 minutes"),
        pytest.param([free("200", "2026-03-01 10:00:00")], "paid", {"E1": ["R1"]}, id="from the moment of purchase"),
        pytest.param([free("200", "2026-03-01 09:59:59")], "paid", {}, id="a second before the purchase"),
        pytest.param([free("200", "2026-03-03 12:00:00")], "paid", {}, id="at the moment of the request"),
        pytest.param([free("200", "2026-03-02 20:00:00", sdkappid=1400000009)], "paid", {}, id="another SDKAppID"),
        pytest.param(
            [free("200", "2026-03-02 20:00:00"), used("1", "2026-03-02 09:00:00", usage_id="U3")],
            "paid",
            {},
            id="the package used too",
        ),
        pytest.param(
            [free("200", "2026-03-02 20:00:00"), used("0", "2026-03-02 09:00:00", usage_id="U3")],
            "paid",
            {"E1": ["R1"]},
            id="the package used for 0 minutes",
        ),
        pytest.param([free("200", "2026-03-02 20:00:00")], "rejected", {}, id="a rejected refund"),
    ],
)
def test_usage_shift(usage, refund, expected):
    found = signal_hits(
        "USAGE_SHIFT",
        purchases=[order("O1"), order("O9", "E9", sdkappid=1400000009)],
        refunds=[{"paid": paid, "rejected": rejected}[refund]("R1", "O1", "2026-03-03 12:00:00")],
        usage=[free("300", "2026-03-01 11:00:00", "U1"), *usage],
    )
    assert fired(found) == expected


def test_usage_shift_minimum_is_a_setting_and_evidence_counts_the_minutes():
    hit = signal_hits(
        "USAGE_SHIFT",
        settings=signals(usage_shift_min_minutes=300),
        purchases=[order("O1")],
        refunds=[paid("R1", "O1", "2026-03-03 12:00:00")],
        usage=[free("300", "2026-03-01 11:00:00", "U1")],
    )["E1"]
    [item] = hit.evidence["refunds"]
    assert (float(item["free_or_payg_minutes"]), item["usage_records"], item["package_minutes_used"]) == (300, 1, 0)


# --- REFUND_VELOCITY: a day with >= 20 live refunds and >= 3 x the baseline median ----------


def refunds_on(day: str, count: int, prefix="V", refund=paid) -> tuple[list[dict], list[dict]]:
    """`count` entities E<prefix><nn>, each with one order bought and refunded on `day`."""
    ids = [f"{prefix}{n:02d}" for n in range(1, count + 1)]
    return (
        [order(f"O{id_}", f"E{id_}", bought=f"{day} 08:00:00") for id_ in ids],
        [refund(f"R{id_}", f"O{id_}", f"{day} 12:00:00") for id_ in ids],
    )


def baseline_of_one_a_day() -> tuple[list[dict], list[dict]]:
    """One refund a day on each of the 28 days before 2026-03-31, each by its own entity."""
    days = [refunds_on(f"{date(2026, 3, 31) - timedelta(days=n)}", 1, prefix=f"B{n:02d}-") for n in range(1, 29)]
    return [row for purchases, _ in days for row in purchases], [row for _, refunds in days for row in refunds]


def spike(*parts: tuple[list[dict], list[dict]]) -> dict:
    return dict(
        purchases=[row for purchases, _ in parts for row in purchases],
        refunds=[row for _, refunds in parts for row in refunds],
    )


def spiking(count: int) -> set[str]:
    return {f"EV{n:02d}" for n in range(1, count + 1)}


@pytest.mark.parametrize(
    ("tables", "settings", "expected"),
    [
        pytest.param(spike(refunds_on("2026-03-30", 20)), None, spiking(20), id="20 refunds on a day"),
        pytest.param(spike(refunds_on("2026-03-30", 19)), None, set(), id="19 refunds on a day"),
        pytest.param(
            spike(refunds_on("2026-03-30", 19), refunds_on("2026-03-30", 1, "X", rejected)),
            None,
            set(),
            id="19 live refunds and a rejected one",
        ),
        pytest.param(spike(refunds_on("2026-03-25", 20)), None, spiking(20), id="on the window's first day"),
        pytest.param(spike(refunds_on("2026-03-24", 20)), None, set(), id="the day before the window"),
        pytest.param(
            spike(baseline_of_one_a_day(), refunds_on("2026-03-31", 3)),
            signals(refund_velocity_min_refunds=2),
            spiking(3),
            id="3 times a baseline median of 1",
        ),
        pytest.param(
            spike(baseline_of_one_a_day(), refunds_on("2026-03-31", 2)),
            signals(refund_velocity_min_refunds=2),
            set(),
            id="2 times a baseline median of 1",
        ),
    ],
)
def test_refund_velocity(tables, settings, expected):
    assert set(signal_hits("REFUND_VELOCITY", settings=settings, **tables)) == expected


@pytest.mark.parametrize(
    ("tables", "settings", "entity_id", "expected"),
    [
        pytest.param(
            spike(refunds_on("2026-03-30", 20)), None, "EV07", (["RV07"], "2026-03-30", 20, 0.0), id="no refunds before"
        ),
        pytest.param(
            spike(baseline_of_one_a_day(), refunds_on("2026-03-31", 3)),
            signals(refund_velocity_min_refunds=2),
            "EV02",
            (["RV02"], "2026-03-31", 3, 1.0),
            id="one refund a day before",
        ),
    ],
)
def test_refund_velocity_evidence_names_the_spike_day(tables, settings, entity_id, expected):
    hit = signal_hits("REFUND_VELOCITY", settings=settings, **tables)[entity_id]
    [day] = hit.evidence["spike_days"]
    assert (hit.refund_ids, day["day"], day["live_refunds"], float(day["baseline_median"])) == expected


def test_every_signal_of_the_catalogue_has_step_tests():
    tested = {name.removeprefix("test_").upper() for name in globals() if name.startswith("test_")}
    assert {signal.code for signal in CATALOG.signals} <= tested
