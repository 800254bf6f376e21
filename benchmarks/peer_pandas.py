"""The pandas peer: SPEC section 4's ten refund rules, written plainly with pandas.

What an analyst without DuckDB would write: read the four exports with pandas, keep what was
known at the end of as_of (SPEC section 3), then one join, sort or group-by per rule. It does
not validate. To judge the same rows as the job, it drops the rows the job quarantined, given
as (source, line) pairs read from the job's `validation_errors` (see `benchmarks/check.py`).
Money stays decimal (Arrow decimal128), never float.

    python -m benchmarks.peer_pandas --input DIR --as-of 2026-03-31 [--quarantine FILE] --out FLAGS.csv
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

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

MONEY = pd.ArrowDtype(pa.decimal128(18, 2))
OFFSET_AT_END = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"


class Night:
    """One night's exports as the run sees them: visible rows, UTC timestamps, decimal money."""

    def __init__(
        self, input_dir: Path, as_of: date, time_zone: str = BILLING_TIME_ZONE, quarantined: pd.DataFrame | None = None
    ):
        self.zone = ZoneInfo(time_zone)
        self.as_of_end = pd.Timestamp(datetime.combine(as_of + timedelta(days=1), time(0), self.zone)).tz_convert("UTC")
        tables = {}
        for stem in VISIBLE_BY:
            lines = set() if quarantined is None else set(quarantined.loc[quarantined.source == stem, "line"])
            tables[stem] = self._read(input_dir, stem, lines)
        self.purchases, self.usage = tables["purchases"], tables["usage"]
        self.refunds, self.account_status = tables["refunds"], tables["account_status"]

    def _read(self, input_dir: Path, stem: str, quarantined_lines: set[int]) -> pd.DataFrame:
        frame, lines = _read_export(input_dir, stem)
        if quarantined_lines:
            frame = frame[~lines(frame).isin(quarantined_lines)]
        for column in TIMESTAMPS[stem]:
            frame[column] = self._utc(frame[column])
        for column in MONEY_COLUMNS.get(stem, []):
            frame[column] = frame[column].astype(MONEY)
        if stem == "usage":
            frame["minutes"] = pd.to_numeric(frame["minutes"]).astype(float)
        return frame[frame[VISIBLE_BY[stem]] < self.as_of_end]

    def _utc(self, values: pd.Series) -> pd.Series:
        """Timestamps in UTC; those without an offset are billing time (SPEC section 2)."""
        if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_timestamp(values.dtype.pyarrow_dtype):
            values = pd.Series(values.to_numpy(), index=values.index)  # Parquet TIMESTAMP
        if pd.api.types.is_datetime64_any_dtype(values):
            local = values.dt.tz_localize(self.zone) if values.dt.tz is None else values
            return local.dt.tz_convert("UTC")
        has_offset = values.str.contains(OFFSET_AT_END, na=False)
        aware = pd.to_datetime(values.where(has_offset), format="ISO8601", utc=True)
        naive = pd.to_datetime(values.where(~has_offset), format="ISO8601").dt.tz_localize(self.zone)
        return aware.where(has_offset, naive.dt.tz_convert("UTC"))

    def billing_day(self, moments: pd.Series) -> pd.Series:
        """The date in the billing time zone, as a naive midnight (SPEC section 3)."""
        return moments.dt.tz_convert(self.zone).dt.tz_localize(None).dt.normalize()


def _read_export(input_dir: Path, stem: str):
    """The export's rows, every column as text (CSV) or as stored (Parquet), and a function
    giving each row's line as the job numbers it (CSV: line where the row starts; Parquet: row)."""
    path = export_path(input_dir, stem)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path, dtype_backend="pyarrow")
        return frame, lambda rows: pd.Series(rows.index + 1, index=rows.index)
    frame = pd.read_csv(path, engine="pyarrow", dtype=str, keep_default_na=False, na_values=[""])
    return frame, _csv_lines


def _csv_lines(frame: pd.DataFrame) -> pd.Series:
    """Line where each row starts: the header is line 1; a quoted newline pushes later rows down."""
    newlines = sum(frame[column].str.count("\n").fillna(0).astype(np.int64) for column in frame.columns)
    pushed = newlines.cumsum().shift(fill_value=0)
    return pd.Series(np.arange(2, len(frame) + 2), index=frame.index) + pushed


def refund_facts(night: Night, window_days: int) -> pd.DataFrame:
    """One row per visible refund with its order, the status the run sees and its cut-off."""
    facts = night.refunds.merge(night.purchases, on="order_id", suffixes=("", "_order"))
    later = (facts["status"] != "pending") & (facts["processed_at"] >= night.as_of_end)
    facts["refund_status"] = facts["status"].where(~later, "pending")
    facts["is_live"] = facts["refund_status"].isin(["pending", "paid"])
    facts["cutoff_at"] = facts["processed_at"].where(facts["refund_status"] == "paid")
    facts.loc[facts["refund_status"] == "pending", "cutoff_at"] = night.as_of_end
    facts["refundable_amount"] = sum(facts[f"paid_{kind}_credit"] for kind in CREDIT_TYPES)
    facts["request_day"] = night.billing_day(facts["requested_at"])
    days = (facts["request_day"] - night.billing_day(facts["purchased_at"])).dt.days
    facts["past_window"] = days > window_days - 1
    return facts.sort_values(["requested_at", "refund_id"], kind="stable").reset_index(drop=True)


def _flags(code: str, rows: pd.DataFrame, amounts: pd.Series | None = None) -> pd.DataFrame:
    amounts = rows["refund_amount"] if amounts is None else amounts
    return pd.DataFrame(
        {
            "refund_id": rows["refund_id"].to_numpy(),
            "rule_code": code,
            "amount_at_risk": amounts.astype(MONEY).to_numpy(),
        }
    )


def _exceeds(amount: pd.Series, limit: pd.Series) -> pd.Series:
    """SPEC 2: one amount exceeds another by more than 0.01."""
    return (amount > limit + CENT).fillna(False).astype(bool)


def usage_hits(night: Night, live: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MINUTES_USED and USAGE_AFTER_REFUND: the order's usage with minutes > 0 around the cut-off."""
    used = night.usage.loc[
        (night.usage["minutes"] > 0) & night.usage["order_id"].isin(live["order_id"].unique()),
        ["order_id", "started_at"],
    ]
    pairs = used.merge(live[["refund_id", "order_id", "refund_status", "cutoff_at", "processed_at"]], on="order_id")
    before = pairs.loc[pairs["started_at"] < pairs["cutoff_at"], "refund_id"].unique()
    after = pairs.loc[
        (pairs["refund_status"] == "paid") & (pairs["started_at"] >= pairs["processed_at"]), "refund_id"
    ].unique()
    return live[live["refund_id"].isin(before)], live[live["refund_id"].isin(after)]


def suspended(night: Night, live: pd.DataFrame, reasons: tuple[str, ...]) -> pd.DataFrame:
    """ACCOUNT_SUSPENDED: a disqualifying suspension in force at requested_at, or effective
    after it and at or before the cut-off."""
    changes = night.account_status[["account_id", "status", "reason", "effective_at"]]
    disqualifying = (changes["status"] == "suspended") & changes["reason"].isin(reasons)
    at_request = pd.merge_asof(
        live[["refund_id", "account_id", "requested_at"]].sort_values("requested_at"),
        changes.assign(disqualifying=disqualifying).sort_values("effective_at"),
        left_on="requested_at",
        right_on="effective_at",
        by="account_id",
    )
    in_force = at_request.loc[at_request["disqualifying"].fillna(False).astype(bool), "refund_id"]
    later = live[["refund_id", "account_id", "requested_at", "cutoff_at"]].merge(
        changes[disqualifying], on="account_id"
    )
    became = later.loc[
        (later["effective_at"] > later["requested_at"]) & (later["effective_at"] <= later["cutoff_at"]), "refund_id"
    ]
    return live[live["refund_id"].isin(in_force) | live["refund_id"].isin(became)]


def path_mismatch(live: pd.DataFrame) -> pd.DataFrame:
    """PATH_MISMATCH: some credit type paid back more than paid with it; at risk, the excesses."""
    excesses = [live[f"refund_{kind}_credit"] - live[f"paid_{kind}_credit"] for kind in CREDIT_TYPES]
    over = [excess > CENT for excess in excesses]
    amount = sum(excess.where(flag, Decimal(0)) for excess, flag in zip(excesses, over, strict=False))
    fired = np.logical_or.reduce([flag.to_numpy(dtype=bool) for flag in over])
    return _flags("PATH_MISMATCH", live[fired], amount[fired])


def evaluate(
    night: Night,
    window_days: int = WINDOW_DAYS,
    disqualifying_reasons: tuple[str, ...] = DISQUALIFYING_REASONS,
) -> pd.DataFrame:
    """Every flag of SPEC section 4: refund_id, rule_code, amount_at_risk (decimal)."""
    facts = refund_facts(night, window_days)
    live = facts[facts["is_live"]]
    previous_day = live.groupby("entity_id")["request_day"].shift()  # live is in (requested_at, refund_id) order
    minutes_used, used_after = usage_hits(night, live)
    coupon = live[_exceeds(live["refund_amount"], live["refundable_amount"])]
    policy = [
        _flags("PAST_WINDOW", live[live["past_window"]]),
        _flags("MINUTES_USED", minutes_used),
        _flags("CONCURRENT_REFUND", live[(live["request_day"] - previous_day).dt.days <= window_days - 1]),
        _flags("ACCOUNT_SUSPENDED", suspended(night, live, disqualifying_reasons)),
        _flags("COUPON_REFUNDED", coupon, coupon["refund_amount"] - coupon["refundable_amount"]),
        path_mismatch(live),
    ]
    flagged = pd.concat([flags["refund_id"] for flags in policy])
    paid = facts[facts["refund_status"] == "paid"]
    under = paid[~paid["refund_id"].isin(flagged) & _exceeds(paid["refundable_amount"], paid["refund_amount"])]
    rejected = facts[facts["refund_status"] == "rejected"]
    reconciliation = [
        _flags("DUPLICATE_REFUND", live[live.duplicated("order_id")]),
        _flags("USAGE_AFTER_REFUND", used_after),
        _flags("UNDER_REFUNDED", under, under["refundable_amount"] - under["refund_amount"]),
        _flags("REJECTED_WITH_PAYOUT", rejected[rejected["refund_amount"] > CENT]),
    ]
    return pd.concat(policy + reconciliation, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--quarantine", type=Path, help="CSV of source,line: the rows the job quarantined")
    parser.add_argument("--out", type=Path, required=True, help="where to write the flags as CSV")
    args = parser.parse_args(argv)
    quarantined = pd.read_csv(args.quarantine) if args.quarantine else None
    flags = evaluate(Night(args.input, args.as_of, quarantined=quarantined))
    flags.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
