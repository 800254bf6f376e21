"""The benchmark's pandas peer flags exactly what the job flags, and the checker sees it when not.

The peer (benchmarks/peer_pandas.py) is written independently of the job's SQL, so agreement
on the sample night, whose refunds sit on every edge of SPEC section 4, and on generated
nights (CSV and Parquet, with the generator's bad rows quarantined) is evidence for both.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from exports import SPEC_RULE_CODES

from jobs.config import Settings, load_settings
from jobs.pipeline import run
from jobs.tools.generate import generate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.check import compare, differences, job_quarantine  # noqa: E402
from benchmarks.peer_pandas import Night, evaluate  # noqa: E402

SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
RULE_CODES = set(SPEC_RULE_CODES)


def test_peer_flags_the_sample_night_like_the_job():
    con = run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, AS_OF, db_path=None).con
    peer = evaluate(Night(SAMPLE, AS_OF, quarantined=job_quarantine(con)))
    assert len(peer) == 14  # data/sample/README.md: the 14 flags of the sample's refunds table
    assert compare(peer, con) == []


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_peer_flags_a_generated_night_like_the_job(tmp_path, file_format):
    generate(tmp_path, scale=0.01, seed=7, file_format=file_format)
    con = run(Settings(), tmp_path, AS_OF, db_path=None).con
    peer = evaluate(Night(tmp_path, AS_OF, quarantined=job_quarantine(con)))
    assert set(peer["rule_code"]) == RULE_CODES  # the night puts every rule to work
    assert compare(peer, con) == []


def test_checker_names_a_flag_found_on_one_side_only():
    job = {("R1", "PAST_WINDOW"): Decimal("10.00")}
    peer = {("R1", "PAST_WINDOW"): Decimal("10.00"), ("R2", "MINUTES_USED"): Decimal("5.00")}
    assert differences(peer, job) == ["R2 MINUTES_USED: only the peer flags it (at risk 5.00)"]
    assert differences({}, job) == ["R1 PAST_WINDOW: only the job flags it (at risk 10.00)"]


def test_checker_names_an_amount_a_cent_apart():
    job = {("R1", "COUPON_REFUNDED"): Decimal("3.00")}
    peer = {("R1", "COUPON_REFUNDED"): Decimal("3.01")}
    assert differences(peer, job) == ["R1 COUPON_REFUNDED: at risk 3.01 (peer) vs 3.00 (job)"]
