"""The benchmark's Polars peer flags exactly what the job flags (issue #12).

benchmarks/peer_polars.py is run as the bench runs it: its command line, given the rows the job
quarantined, writing its flags as CSV, which the bench's checker compares with the job's to the
cent. Polars is a benchmark-only dependency (`make bench` installs it, `make test` does not):
without it these tests are skipped.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from exports import SPEC_RULE_CODES, purchase, refund, run_night, write_exports

from jobs.config import Settings, load_settings
from jobs.pipeline import run
from jobs.tools.generate import generate

pytest.importorskip("polars")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import peer_polars  # noqa: E402
from benchmarks.check import compare_file, job_quarantine  # noqa: E402

SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
RULE_CODES = set(SPEC_RULE_CODES)


# Nights on the edges the generated ones miss. Each refund is paid on day 10 of its order.
DAY_5_ENDS = [  # day 5 of an order bought on 2026-03-01 ends at 2026-03-05 16:00Z
    "2026-03-05T15:59:59Z",
    "2026-03-05T16:00Z",
    "2026-03-05 23:59",
    "2026-03-06T00:00:00.000001",
    "2026-03-05T16:59:59+01",
    "2026-03-05T17:00:00+0100",
    "2026-03-05T10:29:59.5-05:30",
    "2026-03-05T10:30:00-05:30",
]


def order(number: int, entity: str, **overrides) -> dict:
    return purchase(order_id=f"O{number}", account_id=f"A{number}", entity_id=entity, **overrides)


def paid(number: int, order_number: int, requested_at: str, **overrides) -> dict:
    return refund(
        refund_id=f"R{number}",
        order_id=f"O{order_number}",
        requested_at=requested_at,
        processed_at="2026-03-10 12:00:00",
        **overrides,
    )


EDGES = {
    "a refund of the same entity 4 billing days after another is concurrent": (
        [order(1, "E1"), order(2, "E1", purchased_at="2026-03-05 10:00:00")],
        [paid(1, 1, "2026-03-02 12:00:00"), paid(2, 2, "2026-03-06 12:00:00")],
        {("R2", "CONCURRENT_REFUND")},
    ),
    "5 billing days after is not": (
        [order(1, "E1"), order(2, "E1", purchased_at="2026-03-05 10:00:00")],
        [paid(1, 1, "2026-03-02 12:00:00"), paid(2, 2, "2026-03-07 12:00:00")],
        set(),
    ),
    "every ISO 8601 offset form, on either side of day 5's end": (
        [order(number, f"E{number}") for number in range(len(DAY_5_ENDS))],
        [paid(number, number, requested_at) for number, requested_at in enumerate(DAY_5_ENDS)],
        {(f"R{number}", "PAST_WINDOW") for number in range(1, len(DAY_5_ENDS), 2)},
    ),
    "a quoted newline pushes the quarantined row's line down": (
        [order(1, "E1"), order(2, "E2"), order(3, "E3")],
        [
            paid(1, 1, "2026-03-02 12:00:00", note="asked by phone,\nthen by mail"),
            paid(2, 2, "2026-03-02 12:00:00", status="approved"),  # line 4, quarantined
            paid(3, 3, "2026-03-06 12:00:00"),
        ],
        {("R3", "PAST_WINDOW")},
    ),
}


def polars_peer_flags(night: Path, con, folder: Path) -> Path:
    """Run the peer's command line on `night` without the rows the job quarantined; its flags CSV."""
    quarantine, flags = folder / "quarantine.csv", folder / "polars_flags.csv"
    job_quarantine(con).to_csv(quarantine, index=False)
    command = ["--input", str(night), "--as-of", AS_OF.isoformat(), "--quarantine", str(quarantine)]
    peer_polars.main([*command, "--out", str(flags)])
    return flags


def flagged(flags: Path) -> set[tuple[str, str]]:
    return set(pd.read_csv(flags)[["refund_id", "rule_code"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(("purchases", "refunds", "expected"), EDGES.values(), ids=EDGES.keys())
def test_polars_peer_flags_the_edges_like_the_job(tmp_path, purchases, refunds, expected):
    night = run_night(tmp_path, purchases=purchases, refunds=refunds)
    flags = polars_peer_flags(tmp_path / "exports", night.con, tmp_path)
    assert flagged(flags) == expected
    assert compare_file(flags, night.con) == []


def test_polars_peer_counts_a_blank_line_before_the_quarantined_row(tmp_path):
    """A blank line is no row but takes a line: the row the job quarantined after it is still the one dropped."""
    purchases, refunds, expected = EDGES["a quoted newline pushes the quarantined row's line down"]
    refunds = [{**row, "note": ""} for row in refunds]
    night = write_exports(tmp_path / "exports", purchases=purchases, refunds=refunds)
    header, first, *rest = (night / "refunds.csv").read_text().splitlines(keepends=True)
    line_end = header[len(header.rstrip("\r\n")) :]
    (night / "refunds.csv").write_text("".join([header, first, line_end, *rest]))  # line 3 blank
    con = run(Settings(max_bad_row_fraction=1.0), night, AS_OF, db_path=None).con
    assert job_quarantine(con)["line"].tolist() == [4]
    flags = polars_peer_flags(night, con, tmp_path)
    assert flagged(flags) == expected
    assert compare_file(flags, con) == []


def test_polars_peer_flags_the_sample_night_like_the_job(tmp_path):
    con = run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, AS_OF, db_path=None).con
    flags = polars_peer_flags(SAMPLE, con, tmp_path)
    assert len(pd.read_csv(flags)) == 14  # data/sample/README.md: the 14 flags of the sample's refunds table
    assert compare_file(flags, con) == []


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_polars_peer_flags_a_generated_night_like_the_job(tmp_path, file_format):
    night = tmp_path / "night"
    generate(night, scale=0.01, seed=7, file_format=file_format)
    con = run(Settings(), night, AS_OF, db_path=None).con
    flags = polars_peer_flags(night, con, tmp_path)
    assert set(pd.read_csv(flags)["rule_code"]) == RULE_CODES  # the night puts every rule to work
    assert compare_file(flags, con) == []
