"""The Polars peer: SPEC section 4's ten refund rules, as a data engineer would write them today.

Lazy scans of the four exports (`scan_csv` / `scan_parquet`), what was known at the end of
as_of (SPEC section 3), one join, window or group-by per rule, all in one query plan that the
streaming engine collects: usage is reduced to each order's first and last use with minutes
while it is read, never held whole. Like the pandas peer (benchmarks/peer_pandas.py) it does
not validate: it drops the rows the job quarantined, given as (source, line) pairs read from
the job's `validation_errors`. Money stays Decimal(18, 2), never float.

    python -m benchmarks.peer_polars --input DIR --as-of 2026-03-31 [--quarantine FILE] --out FLAGS.csv
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from benchmarks.peers import (
    BILLING_TIME_ZONE,
    CENT,
    CREDIT_TYPES,
    DISQUALIFYING_REASONS,
    MONEY_COLUMNS,
    TIMESTAMPS,
    VISIBLE_BY,
    WINDOW_DAYS,
    export_path,
)

MONEY = pl.Decimal(18, 2)
MINUTES = pl.Decimal(18, 6)
# ISO 8601 as the job accepts it: date, 'T' or a space, hh:mm[:ss[.fraction]], then Z, +hh:mm,
# +hhmm, +hh or nothing. Groups: date, hh:mm, :ss.fraction, Z, sign, offset hours, offset minutes.
ISO_TIMESTAMP = r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(:\d\d(?:\.\d+)?)?(?:(Z)|([+-])(\d\d):?(\d\d)?)?$"


@dataclass
class Night:
    """One night's exports as the run sees them, lazily: visible rows, UTC timestamps, decimal money."""

    purchases: pl.LazyFrame
    usage: pl.LazyFrame
    refunds: pl.LazyFrame
    account_status: pl.LazyFrame
    as_of_end: datetime
    zone: str


def scan_night(
    input_dir: Path, as_of: date, time_zone: str = BILLING_TIME_ZONE, quarantined: pl.DataFrame | None = None
) -> Night:
    """The night's four exports as lazy frames, without the rows `quarantined` (source, line) names."""
    as_of_end = datetime.combine(as_of + timedelta(days=1), time(0), ZoneInfo(time_zone)).astimezone(UTC)
    frames = {}
    for stem, visible_by in VISIBLE_BY.items():
        lines = [] if quarantined is None else quarantined.filter(pl.col("source") == stem)["line"].to_list()
        frames[stem] = _scan(input_dir, stem, lines, time_zone).filter(pl.col(visible_by) < as_of_end)
    return Night(**frames, as_of_end=as_of_end, zone=time_zone)


def _scan(input_dir: Path, stem: str, quarantined_lines: list[int], zone: str) -> pl.LazyFrame:
    """One export, its quarantined lines dropped, timestamps in UTC and money as decimals.

    Polars reads a blank CSV line as a row of nulls: the row index counts its line as the job
    does, and the visibility filter drops the row (its timestamp is null)."""
    path = export_path(input_dir, stem)
    parquet = path.suffix == ".parquet"
    frame = pl.scan_parquet(path) if parquet else pl.scan_csv(path, infer_schema=False)
    schema = frame.collect_schema()
    if quarantined_lines:
        line = pl.col("_row") if parquet else pl.col("_row") + _newlines_before()
        numbered = frame.with_row_index("_row", offset=1 if parquet else 2)
        frame = numbered.filter(~line.is_in(quarantined_lines)).drop("_row")
    texts = [column for column in TIMESTAMPS[stem] if schema[column] == pl.String]
    return frame.with_columns(_iso_parts(column) for column in texts).with_columns(
        *(_instant(column, schema[column], zone) for column in TIMESTAMPS[stem]),
        *(_decimal(column, schema[column], MONEY) for column in MONEY_COLUMNS.get(stem, [])),
        *([_decimal("minutes", schema["minutes"], MINUTES)] if stem == "usage" else []),
    )


def _newlines_before() -> pl.Expr:
    """The quoted newlines in the CSV's rows before each row: how far they push its line down
    from row index + 2 (the header is line 1). A row index, not int_range(len): that streams."""
    newlines = pl.sum_horizontal(pl.col(pl.String).str.count_matches("\n", literal=True).fill_null(0))
    return newlines.cum_sum() - newlines


def _decimal(column: str, dtype: pl.DataType, decimal: pl.Decimal) -> pl.Expr:
    """A number as an exact decimal (text trimmed first, as the job reads it)."""
    value = pl.col(column).str.strip_chars() if dtype == pl.String else pl.col(column)
    return value.cast(decimal)


def _iso_parts(column: str) -> pl.Expr:
    """A text timestamp's parts (ISO_TIMESTAMP's groups) as a struct in its place: matched once."""
    return pl.col(column).str.strip_chars().str.extract_groups(ISO_TIMESTAMP)


def _instant(column: str, dtype: pl.DataType, zone: str) -> pl.Expr:
    """A timestamp in UTC, from its ISO parts or a Parquet timestamp; one without an offset is
    billing time (SPEC 2)."""
    if dtype != pl.String:
        value = pl.col(column)
        local = value.dt.replace_time_zone(zone) if getattr(dtype, "time_zone", None) is None else value
        return local.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    parts = pl.col(column).struct
    wall = pl.concat_str(parts["1"], pl.lit(" "), parts["2"], parts["3"].fill_null(":00")).str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f", time_unit="us"
    )
    offset_minutes = pl.when(parts["5"] == "-").then(-1).otherwise(1) * (
        parts["6"].cast(pl.Int64) * 60 + parts["7"].fill_null("0").cast(pl.Int64)
    )
    with_offset = wall.dt.replace_time_zone("UTC") - pl.duration(minutes=offset_minutes.fill_null(0))
    has_offset = parts["4"].is_not_null() | parts["5"].is_not_null()
    return (
        pl.when(has_offset)
        .then(with_offset)
        .otherwise(wall.dt.replace_time_zone(zone).dt.convert_time_zone("UTC"))
        .alias(column)
    )


def _billing_day(column: str, zone: str) -> pl.Expr:
    """The date of an instant in the billing time zone (SPEC section 3)."""
    return pl.col(column).dt.convert_time_zone(zone).dt.date()


def refund_facts(night: Night, window_days: int) -> pl.LazyFrame:
    """One row per visible refund with its order, the status the run sees and its cut-off."""
    later = (pl.col("status") != "pending") & (pl.col("processed_at") >= night.as_of_end)
    status = pl.col("refund_status")
    days = (_billing_day("requested_at", night.zone) - _billing_day("purchased_at", night.zone)).dt.total_days()
    return (
        night.refunds.join(night.purchases, on="order_id", suffix="_order")
        .with_columns(refund_status=pl.when(later).then(pl.lit("pending")).otherwise("status"))
        .with_columns(
            is_live=status.is_in(["pending", "paid"]),
            cutoff_at=pl.when(status == "paid")
            .then("processed_at")
            .when(status == "pending")
            .then(pl.lit(night.as_of_end)),
            refundable_amount=pl.sum_horizontal(f"paid_{kind}_credit" for kind in CREDIT_TYPES),
            request_day=_billing_day("requested_at", night.zone),
            past_window=days > window_days - 1,
        )
    )


def _flags(code: str, rows: pl.LazyFrame, amount: pl.Expr | None = None) -> pl.LazyFrame:
    amount = pl.col("refund_amount") if amount is None else amount
    return rows.select("refund_id", rule_code=pl.lit(code), amount_at_risk=amount.cast(MONEY))


def _exceeds(amount: str, limit: str) -> pl.Expr:
    """SPEC 2: one amount exceeds another by more than 0.01."""
    return pl.col(amount) > pl.col(limit) + CENT


def with_usage(night: Night, live: pl.LazyFrame) -> pl.LazyFrame:
    """Live refunds with their order's first and last usage with minutes > 0 (null if none).

    Usage is reduced to one row per order in one streaming pass, collected here: two rules read
    it, and the query plan would otherwise scan the file once for each.
    """
    used = (
        night.usage.filter(pl.col("minutes") > 0, pl.col("order_id").is_not_null())
        .group_by("order_id")
        .agg(first_use=pl.col("started_at").min(), last_use=pl.col("started_at").max())
    )
    return live.join(used.collect(engine="streaming").lazy(), on="order_id", how="left")


def suspended(night: Night, live: pl.LazyFrame, reasons: tuple[str, ...]) -> pl.LazyFrame:
    """ACCOUNT_SUSPENDED: a disqualifying suspension in force at requested_at, or effective
    after it and at or before the cut-off."""
    disqualifying = (pl.col("status") == "suspended") & pl.col("reason").is_in(reasons).fill_null(False)
    changes = night.account_status.select("account_id", "effective_at", disqualifying=disqualifying)
    at_request = (
        live.select("refund_id", "account_id", "requested_at")
        .sort("requested_at")
        .join_asof(  # both sides sorted by time above: Polars cannot check that within each account
            changes.sort("effective_at"),
            left_on="requested_at",
            right_on="effective_at",
            by="account_id",
            check_sortedness=False,
        )
        .filter(pl.col("disqualifying"))
    )
    became = live.join(changes.filter("disqualifying"), on="account_id").filter(
        pl.col("effective_at") > pl.col("requested_at"), pl.col("effective_at") <= pl.col("cutoff_at")
    )
    fired = pl.concat([at_request.select("refund_id"), became.select("refund_id")])
    return live.join(fired.unique(), on="refund_id", how="semi")


def path_mismatch(live: pl.LazyFrame) -> pl.LazyFrame:
    """PATH_MISMATCH: some credit type paid back more than paid with it; at risk, the excesses."""
    excesses = [pl.col(f"refund_{kind}_credit") - pl.col(f"paid_{kind}_credit") for kind in CREDIT_TYPES]
    over = [excess > CENT for excess in excesses]
    amount = pl.sum_horizontal(
        pl.when(flag).then(excess).otherwise(pl.lit(Decimal(0))) for excess, flag in zip(excesses, over, strict=True)
    )
    return _flags("PATH_MISMATCH", live.filter(pl.any_horizontal(over)), amount)


def evaluate(
    night: Night,
    window_days: int = WINDOW_DAYS,
    disqualifying_reasons: tuple[str, ...] = DISQUALIFYING_REASONS,
) -> pl.LazyFrame:
    """Every flag of SPEC section 4 (refund_id, rule_code, amount_at_risk as Decimal(18, 2)), lazily."""
    facts = refund_facts(night, window_days)
    live = facts.filter("is_live").sort("requested_at", "refund_id")
    previous_day = pl.col("request_day").shift().over("entity_id")  # live is in (requested_at, refund_id) order
    days_since_previous = (pl.col("request_day") - previous_day).dt.total_days()
    used = with_usage(night, live)
    policy = [
        _flags("PAST_WINDOW", live.filter("past_window")),
        _flags("MINUTES_USED", used.filter(pl.col("first_use") < pl.col("cutoff_at"))),
        _flags("CONCURRENT_REFUND", live.filter(days_since_previous <= window_days - 1)),
        _flags("ACCOUNT_SUSPENDED", suspended(night, live, disqualifying_reasons)),
        _flags(
            "COUPON_REFUNDED",
            live.filter(_exceeds("refund_amount", "refundable_amount")),
            pl.col("refund_amount") - pl.col("refundable_amount"),
        ),
        path_mismatch(live),
    ]
    flagged = pl.concat(policy).select("refund_id")
    paid = facts.filter(pl.col("refund_status") == "paid")
    under = paid.join(flagged, on="refund_id", how="anti").filter(_exceeds("refundable_amount", "refund_amount"))
    rejected = facts.filter(pl.col("refund_status") == "rejected", pl.col("refund_amount") > CENT)
    reconciliation = [
        _flags("DUPLICATE_REFUND", live.filter(~pl.col("order_id").is_first_distinct())),
        _flags(
            "USAGE_AFTER_REFUND",
            used.filter(pl.col("refund_status") == "paid", pl.col("last_use") >= pl.col("processed_at")),
        ),
        _flags("UNDER_REFUNDED", under, pl.col("refundable_amount") - pl.col("refund_amount")),
        _flags("REJECTED_WITH_PAYOUT", rejected),
    ]
    return pl.concat(policy + reconciliation)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--quarantine", type=Path, help="CSV of source,line: the rows the job quarantined")
    parser.add_argument("--out", type=Path, required=True, help="where to write the flags as CSV")
    args = parser.parse_args(argv)
    quarantined = (
        pl.read_csv(args.quarantine, schema={"source": pl.String, "line": pl.Int64}) if args.quarantine else None
    )
    flags = evaluate(scan_night(args.input, args.as_of, quarantined=quarantined))
    flags.collect(engine="streaming").write_csv(args.out)


if __name__ == "__main__":
    main()
