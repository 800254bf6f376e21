"""What the peers share (benchmarks/peer_pandas.py, benchmarks/peer_polars.py): where a night's
exports are, which columns SPEC section 2 types as timestamps and money, by which timestamp a
row becomes visible (SPEC section 3), and the rules' defaults (SPEC section 4).

It imports neither pandas nor Polars, so each peer's child process loads only its own library.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

CENT = Decimal("0.01")
CREDIT_TYPES = ("cash", "commission", "free")
VISIBLE_BY = {
    "purchases": "purchased_at",
    "usage": "started_at",
    "refunds": "requested_at",
    "account_status": "effective_at",
}
TIMESTAMPS = {
    "purchases": ["purchased_at"],
    "usage": ["started_at"],
    "refunds": ["requested_at", "processed_at"],
    "account_status": ["effective_at"],
}
MONEY_COLUMNS = {
    "purchases": [f"paid_{kind}_credit" for kind in CREDIT_TYPES],
    "refunds": [f"refund_{kind}_credit" for kind in CREDIT_TYPES] + ["refund_amount"],
}
BILLING_TIME_ZONE = "Asia/Shanghai"
WINDOW_DAYS = 5
DISQUALIFYING_REASONS = ("content_violation", "illegal_activity")


def export_path(input_dir: Path, stem: str) -> Path:
    """The export's file: `<stem>.parquet`, `<stem>.csv` or `<stem>.csv.gz`, in that order."""
    names = (f"{stem}.parquet", f"{stem}.csv", f"{stem}.csv.gz")
    return next(path for path in (input_dir / name for name in names) if path.exists())
