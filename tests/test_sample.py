"""The sample night in data/sample gives exactly the outcome its README tells.

The expected values below were worked out by hand from SPEC sections 2-4, refund by refund
(see data/sample/README.md for the story of each), not copied from a run of the job.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from exports import Night
from jobs.config import load_settings
from jobs.pipeline import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)

RULE_CODES = {
    "PAST_WINDOW", "MINUTES_USED", "CONCURRENT_REFUND", "ACCOUNT_SUSPENDED", "COUPON_REFUNDED",
    "PATH_MISMATCH", "DUPLICATE_REFUND", "USAGE_AFTER_REFUND", "UNDER_REFUNDED", "REJECTED_WITH_PAYOUT",
}

# Every refund the run sees. RF2603260014 (order quarantined), the second RF2603110003 row
# (duplicate key) and RF2604010020 (requested after as_of) are not among them.
EXPECTED_CODES = {
    "RF2603040001": set(),                                     # day 3, unused, paid in full
    "RF2603070002": {"MINUTES_USED"},                          # 60.5 min used; partial payout is no UNDER_REFUNDED
    "RF2603110003": set(),                                     # old content suspension lifted in Feb
    "RF2603120004": {"ACCOUNT_SUSPENDED"},                     # content_violation in force at request
    "RF2603130005": {"CONCURRENT_REFUND"},                     # 2 days after RF2603110003, same entity
    "RF2603140006": {"PAST_WINDOW"},                           # 2026-03-13T16:20Z is billing day 6
    "RF2603150007": {"REJECTED_WITH_PAYOUT"},                  # rejected, 399.00 paid out
    "RF2603180008": set(),                                     # arrears suspension does not disqualify
    "RF2603190009": {"COUPON_REFUNDED", "PATH_MISMATCH"},      # 300.00 coupon paid back in cash
    "RF2603200010": set(),                                     # day 5 at 23:59:59 billing time
    "RF2603230011": set(),                                     # first of a double submission (id order)
    "RF2603230012": {"DUPLICATE_REFUND", "CONCURRENT_REFUND"}, # same instant, same order, later id
    "RF2603250013": {"USAGE_AFTER_REFUND"},                    # package used after the payout
    "RF2603270015": {"UNDER_REFUNDED"},                        # 10.00 handling fee withheld
    "RF2603280016": {"ACCOUNT_SUSPENDED"},                     # illegal_activity after the request
    "RF2603290017": set(),                                     # rejected, nothing paid: rules skip it
    "RF2603300018": {"PATH_MISMATCH"},                         # 199.00 free credit refunded as cash
    "RF2603300019": {"MINUTES_USED"},                          # processed 04-01: pending, cut-off end of 03-31
}

EXPECTED_VERDICTS = {
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
    "RF2603280016": "stop",
    "RF2603290017": "rejected",
    "RF2603300018": "stop",
    "RF2603300019": "stop",
}

# SPEC 4, money at risk: the refund_amount when a whole-refund code fired, else the largest
# flag's amount (COUPON_REFUNDED: excess; PATH_MISMATCH: sum of excesses; UNDER_REFUNDED:
# shortfall; others: refund_amount), else 0.
EXPECTED_AMOUNT_AT_RISK = {
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
    "RF2603280016": "1999.00",
    "RF2603290017": "0.00",
    "RF2603300018": "199.00",
    "RF2603300019": "899.00",
}

# (source, line, check): lines are physical CSV lines, header = 1. The refund on lines
# 18-19 of refunds.csv has a two-line quoted note, so the duplicate after it is on line 22.
EXPECTED_QUARANTINE = {
    ("purchases", 18, "account_entity_conflict"),  # ENT0011480 claims ENT0011207's account
    ("usage", 22, "greater_than_or_equal_to"),     # -12.5 minutes (a billing reversal)
    ("usage", 29, "unknown_order"),                # order 202603190007 is not in purchases
    ("refunds", 15, "order_quarantined"),          # refund of the conflicting order
    ("refunds", 22, "duplicate_key"),              # RF2603110003 re-sent
}

# source -> (rows in, loaded, quarantined, after as_of)
EXPECTED_COUNTS = {
    "purchases": (22, 21, 1, 1),
    "usage": (39, 37, 2, 1),
    "refunds": (20, 18, 2, 1),
    "account_status": (7, 7, 0, 0),
}


@pytest.fixture(scope="module")
def night() -> Night:
    settings = load_settings(SAMPLE / "refund-recon.toml")
    return Night(run(settings, SAMPLE, AS_OF, db_path=None).con)


def test_the_sample_config_allows_its_deliberate_bad_rows():
    settings = load_settings(SAMPLE / "refund-recon.toml")
    assert settings.max_bad_row_fraction == 0.25
    assert settings.refund_window_days == 5
    assert settings.billing_time_zone == "Asia/Shanghai"


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
