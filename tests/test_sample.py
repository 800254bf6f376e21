"""The sample night in data/sample gives exactly the outcome its README tells.

The expected values below were worked out by hand from SPEC sections 2-5, refund by refund and
entity by entity (see data/sample/README.md for the story of each), not copied from a run of
the job. The sample config lowers two signal thresholds (refund_velocity_min_refunds = 4,
linked_fingerprint_max_entities = 3); everything else is at its default.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from exports import SPEC_RULE_CODES, Night

from jobs.config import load_settings
from jobs.pipeline import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)

RULE_CODES = set(SPEC_RULE_CODES)

SPEC_SIGNAL_CODES = {
    "SERIAL_REFUNDER",
    "REFUND_CYCLE",
    "PROMO_REFUNDS",
    "REFUND_BEFORE_SUSPENSION",
    "LINKED_ENTITIES",
}
EXTRA_SIGNAL_CODES = {"LINKED_TO_SUSPENDED", "USAGE_SHIFT", "REFUND_VELOCITY"}

# Every refund the run sees. RF2603260014 (order quarantined), the second RF2603110003 row
# (duplicate key) and RF2604010020 (requested after as_of) are not among them.
EXPECTED_CODES = {
    "RF2602240021": set(),  # day 2, unused: compliant (ENT0020117's 3rd refund)
    "RF2603040001": set(),  # day 3, unused, paid in full
    "RF2603070002": {"MINUTES_USED"},  # 60.5 min used; partial payout is no UNDER_REFUNDED
    "RF2603110003": set(),  # old content suspension lifted in Feb
    "RF2603120004": {"ACCOUNT_SUSPENDED"},  # content_violation in force at request
    "RF2603130005": {"CONCURRENT_REFUND"},  # 2 days after RF2603110003, same entity
    "RF2603140006": {"PAST_WINDOW"},  # 2026-03-13T16:20Z is billing day 6
    "RF2603150007": {"REJECTED_WITH_PAYOUT"},  # rejected, 399.00 paid out
    "RF2603180008": set(),  # arrears suspension does not disqualify
    "RF2603190009": {"COUPON_REFUNDED", "PATH_MISMATCH"},  # 300.00 coupon paid back in cash
    "RF2603200010": set(),  # day 5 at 23:59:59 billing time
    "RF2603230011": set(),  # first of a double submission (id order)
    "RF2603230012": {"DUPLICATE_REFUND", "CONCURRENT_REFUND"},  # same instant, same order, later id
    "RF2603250013": {"USAGE_AFTER_REFUND"},  # package used after the payout
    "RF2603270015": {"UNDER_REFUNDED"},  # 10.00 handling fee withheld
    "RF2603270022": set(),  # ring entity A: day 2, unused, paid in full
    "RF2603280016": {"ACCOUNT_SUSPENDED"},  # illegal_activity after the request
    "RF2603290017": set(),  # rejected, nothing paid: rules skip it
    "RF2603300018": {"PATH_MISMATCH"},  # 199.00 free credit refunded as cash
    "RF2603300019": {"MINUTES_USED"},  # processed 04-01: pending, cut-off end of 03-31
    "RF2603310023": set(),  # ring entity C: day 3, unused, pending
    "RF2603310024": set(),  # package untouched (500 free minutes used instead)
    "RF2603310025": set(),  # second account of ENT0010873, not suspended itself
    "RF2603310026": set(),  # an ordinary day-2 refund on the spike day
}

EXPECTED_VERDICTS = {
    "RF2602240021": "compliant",
    "RF2603040001": "compliant",
    "RF2603070002": "breach",
    "RF2603110003": "compliant",
    "RF2603120004": "breach",
    "RF2603130005": "breach",
    "RF2603140006": "breach",
    "RF2603150007": "breach",
    "RF2603180008": "compliant",
    "RF2603190009": "breach",
    "RF2603200010": "compliant",
    "RF2603230011": "compliant",
    "RF2603230012": "breach",
    "RF2603250013": "breach",
    "RF2603270015": "breach",
    "RF2603270022": "compliant",
    "RF2603280016": "stop",
    "RF2603290017": "rejected",
    "RF2603300018": "stop",
    "RF2603300019": "stop",
    "RF2603310023": "compliant",
    "RF2603310024": "compliant",
    "RF2603310025": "compliant",
    "RF2603310026": "compliant",
}

# SPEC 4, money at risk: the refund_amount when a whole-refund code fired, else the largest
# flag's amount (COUPON_REFUNDED: excess; PATH_MISMATCH: sum of excesses; UNDER_REFUNDED:
# shortfall; others: refund_amount), else 0.
EXPECTED_AMOUNT_AT_RISK = {
    "RF2602240021": "0.00",
    "RF2603040001": "0.00",
    "RF2603070002": "200.00",
    "RF2603110003": "0.00",
    "RF2603120004": "2999.00",
    "RF2603130005": "129.00",
    "RF2603140006": "809.10",
    "RF2603150007": "399.00",
    "RF2603180008": "0.00",
    "RF2603190009": "300.00",
    "RF2603200010": "0.00",
    "RF2603230011": "0.00",
    "RF2603230012": "219.00",
    "RF2603250013": "699.00",
    "RF2603270015": "10.00",
    "RF2603270022": "0.00",
    "RF2603280016": "1999.00",
    "RF2603290017": "0.00",
    "RF2603300018": "199.00",
    "RF2603300019": "899.00",
    "RF2603310023": "0.00",
    "RF2603310024": "0.00",
    "RF2603310025": "0.00",
    "RF2603310026": "0.00",
}

# (source, line, check): lines are physical CSV lines, header = 1. The refund on lines
# 20-21 of refunds.csv has a two-line quoted note, so the duplicate after it is on line 28.
EXPECTED_QUARANTINE = {
    ("purchases", 26, "account_entity_conflict"),  # ENT0011480 claims ENT0011207's account
    ("usage", 22, "greater_than_or_equal_to"),  # -12.5 minutes (a billing reversal)
    ("usage", 29, "unknown_order"),  # order 202603190007 is not in purchases
    ("refunds", 16, "order_quarantined"),  # refund of the conflicting order
    ("refunds", 28, "duplicate_key"),  # RF2603110003 re-sent
}

# source -> (rows in, loaded, quarantined, after as_of)
EXPECTED_COUNTS = {
    "purchases": (35, 34, 1, 1),
    "usage": (41, 39, 2, 1),
    "refunds": (26, 24, 2, 1),
    "account_status": (7, 7, 0, 0),
}

# SPEC 5 (and the three signals beyond it, jobs/stages/abuse.py): (entity_id, signal_code) -> the
# refunds behind the signal. Windows end on as_of 2026-03-31 (90 days: from 01-01; 180 days:
# from 2025-10-03; 7 days: from 03-25).
RING = ("ENT0011563", "ENT0011618", "ENT0011702")  # A -card 1- B -card 2- C
EXPECTED_SIGNALS = {
    # 3 live refunds in the 90 days: 02-24, 03-07, 03-27 (each judged on its own merits).
    ("ENT0020117", "SERIAL_REFUNDER"): {"RF2602240021", "RF2603070002", "RF2603270015"},
    # Two Live refunds each followed by a Live purchase: RF2603140006 (03-14) by 202603170001
    # (03-17, 3 days) and RF2603190009 (03-19) by 202603240002 (03-24, 5 days).
    ("ENT0010544", "REFUND_CYCLE"): {"RF2603140006", "RF2603190009"},
    # Two promotion orders refunded: 202603090001 (discount 89.90), 202603170001 (coupon 300.00).
    ("ENT0010544", "PROMO_REFUNDS"): {"RF2603140006", "RF2603190009"},
    # Requested 03-28 09:00; 100104455672 suspended for illegal_activity 03-30 11:00, 2 days later.
    ("ENT0011342", "REFUND_BEFORE_SUSPENSION"): {"RF2603280016"},
    # A (03-27) and C (03-31) are 4 billing days apart, the limit; fires for A, B and C.
    ("ENT0011563", "LINKED_ENTITIES"): {"RF2603270022", "RF2603310023"},
    ("ENT0011618", "LINKED_ENTITIES"): {"RF2603270022", "RF2603310023"},
    ("ENT0011702", "LINKED_ENTITIES"): {"RF2603270022", "RF2603310023"},
    # Refund on the second account 100061209731 while 100061204455 is still suspended
    # for content_violation (since 03-12).
    ("ENT0010873", "LINKED_TO_SUSPENDED"): {"RF2603310025"},
    # Package 202603270002 untouched; its SDKAppID used 240 + 260 = 500 free minutes between
    # the purchase and the request (the threshold is >= 500).
    ("ENT0011795", "USAGE_SHIFT"): {"RF2603310024"},
    # 03-31: 4 live refunds (>= 4) against a median of 0.5 over 03-03..03-30 (14 of those 28
    # days had a live refund): every entity refunding that day.
    ("ENT0011702", "REFUND_VELOCITY"): {"RF2603310023"},
    ("ENT0011795", "REFUND_VELOCITY"): {"RF2603310024"},
    ("ENT0010873", "REFUND_VELOCITY"): {"RF2603310025"},
    ("ENT0020607", "REFUND_VELOCITY"): {"RF2603310026"},
}

# One case per linked group with signals: entity_ids -> signal_codes. The reseller's card
# shared by ENT0010231, ENT0010544, ENT0010965 and ENT0010688 is over the sample's
# linked_fingerprint_max_entities (3), so it links nobody and ENT0010544 stays alone.
EXPECTED_CASES = {
    ("ENT0010544",): {"PROMO_REFUNDS", "REFUND_CYCLE"},
    ("ENT0011342",): {"REFUND_BEFORE_SUSPENSION"},
    ("ENT0020117",): {"SERIAL_REFUNDER"},
    RING: {"LINKED_ENTITIES", "REFUND_VELOCITY"},
    ("ENT0010873",): {"LINKED_TO_SUSPENDED", "REFUND_VELOCITY"},
    ("ENT0011795",): {"USAGE_SHIFT", "REFUND_VELOCITY"},
    ("ENT0020607",): {"REFUND_VELOCITY"},
}

RESELLER_CLIENTS = ("ENT0010231", "ENT0010544", "ENT0010688", "ENT0010965")


@pytest.fixture(scope="module")
def night() -> Night:
    settings = load_settings(SAMPLE / "refund-recon.toml")
    return Night(run(settings, SAMPLE, AS_OF, db_path=None).runner)


def test_the_sample_config_allows_its_deliberate_bad_rows():
    settings = load_settings(SAMPLE / "refund-recon.toml")
    assert settings.max_bad_row_fraction == 0.25
    assert settings.refund_window_days == 5
    assert settings.billing_time_zone == "Asia/Shanghai"
    assert settings.signals.refund_velocity_min_refunds == 4
    assert settings.signals.linked_fingerprint_max_entities == 3


def test_exactly_the_expected_refunds_are_judged(night):
    judged = {refund_id for (refund_id,) in night.con.execute("SELECT refund_id FROM refund_verdicts").fetchall()}
    assert judged == set(EXPECTED_CODES)


def test_each_refund_gets_exactly_its_codes(night):
    actual = {refund_id: night.codes(refund_id) for refund_id in EXPECTED_CODES}
    assert actual == EXPECTED_CODES


def test_each_refund_gets_its_verdict(night):
    actual = {refund_id: night.verdict(refund_id)["verdict"] for refund_id in EXPECTED_VERDICTS}
    assert actual == EXPECTED_VERDICTS


def test_each_refund_puts_the_expected_money_at_risk(night):
    actual = {refund_id: night.verdict(refund_id)["amount_at_risk"] for refund_id in EXPECTED_AMOUNT_AT_RISK}
    assert actual == EXPECTED_AMOUNT_AT_RISK


def test_every_rule_code_and_every_verdict_occurs():
    assert set().union(*EXPECTED_CODES.values()) == RULE_CODES
    assert set(EXPECTED_VERDICTS.values()) == {"breach", "stop", "compliant", "rejected"}


def test_every_rule_code_fires_in_the_run(night):
    fired = {code for (code,) in night.con.execute("SELECT DISTINCT rule_code FROM refund_flags").fetchall()}
    assert fired == RULE_CODES


def test_exactly_the_bad_rows_are_quarantined(night):
    rows = night.con.execute('SELECT source, line, "check" FROM quarantine').fetchall()
    assert set(rows) == EXPECTED_QUARANTINE
    assert len(rows) == len(EXPECTED_QUARANTINE)  # one failed check per bad row


def test_rows_are_accounted_for(night):
    rows = night.con.execute(
        "SELECT source, rows_in, rows_loaded, rows_quarantined, rows_after_as_of FROM run_inputs"
    ).fetchall()
    assert {source: tuple(counts) for source, *counts in rows} == EXPECTED_COUNTS


def signals_of(night: Night) -> dict:
    rows = night.con.execute("SELECT entity_id, signal_code, refund_ids FROM abuse_signals").fetchall()
    assert len(rows) == len({(entity_id, code) for entity_id, code, _ in rows})  # one row per entity and code
    return {(entity_id, code): set(refund_ids) for entity_id, code, refund_ids in rows}


def cases_of(night: Night) -> dict:
    rows = night.con.execute("SELECT entity_ids, signal_codes FROM abuse_cases").fetchall()
    assert len(rows) == len({tuple(sorted(entity_ids)) for entity_ids, _ in rows})  # one case per group
    return {tuple(sorted(entity_ids)): set(codes) for entity_ids, codes in rows}


def test_exactly_the_expected_abuse_signals_fire(night):
    assert set(signals_of(night)) == set(EXPECTED_SIGNALS)


def test_each_abuse_signal_names_the_refunds_behind_it(night):
    assert signals_of(night) == EXPECTED_SIGNALS


def test_every_spec_signal_and_every_extra_signal_occurs():
    fired = {code for _, code in EXPECTED_SIGNALS}
    assert fired == SPEC_SIGNAL_CODES | EXTRA_SIGNAL_CODES


def test_every_spec_signal_fires_in_the_run(night):
    fired = {code for (code,) in night.con.execute("SELECT DISTINCT signal_code FROM abuse_signals").fetchall()}
    assert fired >= SPEC_SIGNAL_CODES
    assert fired == SPEC_SIGNAL_CODES | EXTRA_SIGNAL_CODES


def test_each_case_holds_its_group_and_signals(night):
    assert cases_of(night) == EXPECTED_CASES


def test_the_ring_links_three_entities_through_two_cards(night):
    # A and B share one card, B and C another; B never asked for a refund but is in the group.
    assert RING in cases_of(night)
    assert {entity for entity, code in signals_of(night) if code == "LINKED_ENTITIES"} == set(RING)


def test_the_resellers_card_links_the_four_clients_only_without_the_sample_limit():
    settings = load_settings(SAMPLE / "refund-recon.toml")
    settings = replace(settings, signals=replace(settings.signals, linked_fingerprint_max_entities=20))
    wide = Night(run(settings, SAMPLE, AS_OF, db_path=None).runner)
    cases = cases_of(wide)
    assert RESELLER_CLIENTS in cases
    # ENT0010544 (03-14, 03-19) and ENT0010965 (03-18) refunded within 4 billing days.
    assert cases[RESELLER_CLIENTS] == {"LINKED_ENTITIES", "PROMO_REFUNDS", "REFUND_CYCLE"}
    signals = signals_of(wide)
    for entity_id in RESELLER_CLIENTS:
        assert signals[(entity_id, "LINKED_ENTITIES")] == {"RF2603140006", "RF2603180008", "RF2603190009"}
