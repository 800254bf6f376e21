"""Properties over random nights (SPEC sections 2 and 3): every row read is accounted for, and
every loaded refund gets exactly one verdict."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from exports import purchase, refund, status, usage, write_exports
from fuzzing import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.config import Settings
from jobs.pipeline import run

BILLING = timezone(timedelta(hours=8))
START = datetime(2026, 2, 20, tzinfo=BILLING)
BAD_VALUES = ["", "x", "-1", "0", "1.005", "usd", "2026-13-01 00:00:00", "a\nb", 'say "hi"', "9" * 30]


@st.composite
def moments(draw, after: datetime = START) -> str:
    """A timestamp around March 2026 (not before `after`), written naive (billing time), in UTC
    or with +08:00."""
    moment = after + timedelta(seconds=draw(st.integers(0, 50 * 86400)))
    return draw(written(moment))


@st.composite
def written(draw, moment: datetime) -> str:
    style = draw(st.sampled_from(["naive", "utc", "offset"]))
    if style == "naive":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == "utc":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


money = st.integers(0, 20000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")


@st.composite
def corrupted(draw, row: dict) -> dict:
    """Maybe replace one cell with a bad value."""
    if draw(st.integers(0, 3)) == 0:
        column = draw(st.sampled_from(sorted(row)))
        return row | {column: draw(st.sampled_from(BAD_VALUES))}
    return row


@st.composite
def nights(draw):
    order_ids = [f"O{i}" for i in range(draw(st.integers(0, 5)))]
    known = [*order_ids, "O9"]
    purchases = []
    for order_id in order_ids:
        cash, commission, free = draw(money), draw(money), draw(money)
        discount, coupon = draw(money), draw(money)
        total = sum(int(v.replace(".", "")) for v in (cash, commission, free, discount, coupon))
        list_price = f"{total // 100}.{total % 100:02d}"
        account = draw(st.sampled_from(["A1", "A2", "A3"]))
        row = purchase(
            order_id=order_id,
            account_id=account,
            entity_id=draw(st.sampled_from(["E1", "E2", "E3"])),
            product=draw(st.sampled_from(["call", "conference", "live", "rtc_engine"])),
            purchased_at=draw(moments()),
            list_price=list_price,
            discount_amount=discount,
            coupon_amount=coupon,
            paid_cash_credit=cash,
            paid_commission_credit=commission,
            paid_free_credit=free,
        )
        purchases.append(draw(corrupted(row)))
    if purchases and draw(st.booleans()):
        purchases.append(dict(draw(st.sampled_from(purchases))))  # a duplicate order
    refunds = []
    for i in range(draw(st.integers(0, 6))):
        refund_status = draw(st.sampled_from(["pending", "paid", "rejected"]))
        requested = START + timedelta(seconds=draw(st.integers(0, 50 * 86400)))
        parts = [draw(money), "0.00", "0.00"]
        row = refund(
            refund_id=f"R{i}",
            order_id=draw(st.sampled_from(known)),
            requested_at=draw(written(requested)),
            status=refund_status,
            processed_at="" if refund_status == "pending" else draw(moments(requested)),
            refund_cash_credit=parts[0],
            refund_amount=parts[0],
            currency=draw(st.sampled_from(["USD", "USD", "EUR"])),
        )
        refunds.append(draw(corrupted(row)))
    usages = [
        draw(
            corrupted(
                usage(
                    usage_id=f"U{i}",
                    order_id=draw(st.sampled_from([*known, ""])),
                    started_at=draw(moments()),
                    minutes=str(draw(st.integers(0, 500))),
                )
            )
        )
        for i in range(draw(st.integers(0, 6)))
    ]
    statuses = [
        draw(
            corrupted(
                status(
                    account_id=draw(st.sampled_from(["A1", "A2"])),
                    status=draw(st.sampled_from(["active", "suspended", "closed"])),
                    reason=draw(st.sampled_from(["", "content_violation", "overdue_payment"])),
                    effective_at=draw(moments()),
                )
            )
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    ragged = draw(st.sets(st.sampled_from(["purchases", "usage", "refunds", "account_status"]), max_size=2))
    as_of = date(2026, 3, 1) + timedelta(days=draw(st.integers(0, 45)))
    return dict(purchases=purchases, usage=usages, refunds=refunds, account_status=statuses), ragged, as_of


@pytest.mark.fuzz
@settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nights())
def test_every_row_is_accounted_for_and_every_loaded_refund_has_one_verdict(night):
    exports, ragged, as_of = night
    with tempfile.TemporaryDirectory() as directory:
        folder = write_exports(Path(directory), **exports)
        for stem in ragged:  # a row the CSV reader cannot split into the header's columns
            with (folder / f"{stem}.csv").open("a", encoding="utf-8", newline="") as stream:
                stream.write("ragged,row\r\n")
        result = run(Settings(max_bad_row_fraction=1.0), folder, as_of, db_path=None)

    for stem, rows in exports.items():
        counts = result.files[stem]
        assert counts.rows_read == len(rows) + (stem in ragged), counts
        assert counts.rows_read == counts.rows_after_as_of + counts.rows_in, counts
        assert counts.rows_in == counts.rows_loaded + counts.rows_quarantined, counts
        overlap = result.con.execute(
            f"SELECT count(*) FROM delivered_{stem} WHERE _line IN (SELECT line FROM quarantine WHERE source = ?)",
            [stem],
        ).fetchone()[0]
        assert overlap == 0, f"{stem}: a row is both loaded and quarantined"

    loaded = sorted(r for (r,) in result.con.execute("SELECT refund_id FROM refunds").fetchall())
    verdicts = sorted(r for (r,) in result.con.execute("SELECT refund_id FROM refund_verdicts").fetchall())
    assert verdicts == loaded
