"""The four exports of SPEC section 2: their columns, keys and Pandera row schemas.

`EXPORTS` is the single description of the inputs. The loader reads its column kinds,
validation runs its Pandera models over bounded batches of typed rows, and the
cross-row rules (duplicate keys, references between exports) live in `sql/validation/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.typing import Series

# Column kinds and the DuckDB / Arrow types a loaded value has.
SQL_TYPES = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "money": "DECIMAL(18,2)",
    "minutes": "DECIMAL(18,6)",
    "timestamp": "TIMESTAMPTZ",
}
ARROW_TYPES = {
    "text": pyarrow.string(),
    "int": pyarrow.int64(),
    "money": pyarrow.decimal128(18, 2),
    "minutes": pyarrow.decimal128(18, 6),
    "timestamp": pyarrow.timestamp("us", tz="UTC"),
}
# What a value of each kind must look like, in words for the quarantine's messages.
KIND_WORDS = {
    "text": "text",
    "int": "a whole number within 64 bits",
    "money": "an amount with at most 2 decimals and 16 digits before the point",
    "minutes": "a number with at most 6 decimals and 12 digits before the point",
    "timestamp": "an ISO 8601 timestamp",
}
CENT = Decimal("0.01")

Text = Series[pd.ArrowDtype(ARROW_TYPES["text"])]
Int = Series[pd.ArrowDtype(ARROW_TYPES["int"])]
Money = Series[pd.ArrowDtype(ARROW_TYPES["money"])]
Minutes = Series[pd.ArrowDtype(ARROW_TYPES["minutes"])]
Timestamp = Series[pd.ArrowDtype(ARROW_TYPES["timestamp"])]

PRODUCTS = ["call", "conference", "live", "rtc_engine"]
PACKAGE_KINDS = ["package", "feature_package"]
MEDIA_TYPES = ["audio", "video_sd", "video_hd", "video_fhd", "video_2k", "video_4k"]
REFUND_STATUSES = ["pending", "paid", "rejected"]
ACCOUNT_STATUSES = ["active", "suspended", "closed"]
STATUS_REASONS = ["content_violation", "illegal_activity", "overdue_payment", "security_risk", "user_request", "other"]
CURRENCY_PATTERN = r"^[A-Z]{3}$"


# The amounts the row checks relate. Each row check carries its SQL twin in `statistics["sql"]`
# (jobs/stages/checks.py runs it; tests/test_checks.py proves both agree).
_PRICE = ("list_price", "discount_amount", "coupon_amount")
_PAID = ("paid_cash_credit", "paid_commission_credit", "paid_free_credit")
_REFUND_PARTS = ("refund_cash_credit", "refund_commission_credit", "refund_free_credit")


def within_a_cent(left: pd.Series, right: pd.Series) -> pd.Series:
    """SPEC: two amounts are equal within 0.01. A row with a missing amount is judged elsewhere."""
    return ((left - right).abs() <= CENT).fillna(True).astype(bool)


class PurchaseRow(pa.DataFrameModel):
    """purchases: one row per package order."""

    order_id: Text = pa.Field(nullable=False)
    account_id: Text = pa.Field(nullable=False)
    entity_id: Text = pa.Field(nullable=False)
    sdkappid: Int = pa.Field(gt=0, nullable=False)
    product: Text = pa.Field(isin=PRODUCTS, nullable=False)
    package_kind: Text = pa.Field(isin=PACKAGE_KINDS, nullable=False)
    edition: Text = pa.Field(nullable=True)
    gifted_minutes: Int = pa.Field(ge=0, nullable=True)
    purchased_at: Timestamp = pa.Field(nullable=False)
    currency: Text = pa.Field(str_matches=CURRENCY_PATTERN, nullable=False)
    list_price: Money = pa.Field(ge=0, nullable=False)
    discount_amount: Money = pa.Field(ge=0, nullable=False)
    coupon_amount: Money = pa.Field(ge=0, nullable=False)
    paid_cash_credit: Money = pa.Field(ge=0, nullable=False)
    paid_commission_credit: Money = pa.Field(ge=0, nullable=False)
    paid_free_credit: Money = pa.Field(ge=0, nullable=False)
    payment_fingerprint: Text = pa.Field(nullable=True)

    @pa.dataframe_check(
        name="refundable_amount_identity",
        statistics={"sql": f"abs(({' - '.join(_PRICE)}) - ({' + '.join(_PAID)})) <= {CENT}"},
    )
    def paid_parts_equal_price_less_reductions(cls, rows: pd.DataFrame) -> pd.Series:
        price_less_reductions = rows["list_price"] - rows["discount_amount"] - rows["coupon_amount"]
        paid = rows["paid_cash_credit"] + rows["paid_commission_credit"] + rows["paid_free_credit"]
        return within_a_cent(price_less_reductions, paid)

    class Config:
        strict = False


class UsageRow(pa.DataFrameModel):
    """usage: one row per usage record deducted or billed."""

    usage_id: Text = pa.Field(nullable=False)
    order_id: Text = pa.Field(nullable=True)
    sdkappid: Int = pa.Field(gt=0, nullable=False)
    started_at: Timestamp = pa.Field(nullable=False)
    minutes: Minutes = pa.Field(ge=0, nullable=False)
    media_type: Text = pa.Field(isin=MEDIA_TYPES, nullable=False)

    class Config:
        strict = False


class RefundRow(pa.DataFrameModel):
    """refunds: one row per refund request."""

    refund_id: Text = pa.Field(nullable=False)
    order_id: Text = pa.Field(nullable=False)
    requested_at: Timestamp = pa.Field(nullable=False)
    status: Text = pa.Field(isin=REFUND_STATUSES, nullable=False)
    processed_at: Timestamp = pa.Field(nullable=True)
    currency: Text = pa.Field(str_matches=CURRENCY_PATTERN, nullable=False)
    refund_cash_credit: Money = pa.Field(ge=0, nullable=False)
    refund_commission_credit: Money = pa.Field(ge=0, nullable=False)
    refund_free_credit: Money = pa.Field(ge=0, nullable=False)
    refund_amount: Money = pa.Field(nullable=False)

    @pa.dataframe_check(
        name="refund_parts_sum_to_amount",
        statistics={"sql": f"abs(refund_amount - ({' + '.join(_REFUND_PARTS)})) <= {CENT}"},
    )
    def parts_sum_to_amount(cls, rows: pd.DataFrame) -> pd.Series:
        parts = rows["refund_cash_credit"] + rows["refund_commission_credit"] + rows["refund_free_credit"]
        return within_a_cent(rows["refund_amount"], parts)

    @pa.dataframe_check(
        name="processed_at_null_iff_pending",
        statistics={"sql": "(processed_at IS NULL) = coalesce(status = 'pending', false)"},
    )
    def processed_only_when_decided(cls, rows: pd.DataFrame) -> pd.Series:
        return rows["processed_at"].isna() == (rows["status"] == "pending").fillna(False)

    @pa.dataframe_check(name="processed_not_before_requested", statistics={"sql": "processed_at >= requested_at"})
    def processed_after_request(cls, rows: pd.DataFrame) -> pd.Series:
        return (rows["processed_at"] >= rows["requested_at"]).fillna(True).astype(bool)

    class Config:
        strict = False


class AccountStatusRow(pa.DataFrameModel):
    """account_status: one row per status change."""

    account_id: Text = pa.Field(nullable=False)
    status: Text = pa.Field(isin=ACCOUNT_STATUSES, nullable=False)
    reason: Text = pa.Field(isin=STATUS_REASONS, nullable=True)
    effective_at: Timestamp = pa.Field(nullable=False)

    class Config:
        strict = False


@dataclass(frozen=True)
class Export:
    """One nightly export: its file stem, typed columns, key and row schema."""

    stem: str
    columns: dict[str, str]  # column -> kind (a key of SQL_TYPES)
    key: tuple[str, ...]
    visible_by: str  # the timestamp that decides whether a run can see the row (SPEC section 3)
    row_schema: type[pa.DataFrameModel]
    row_rules: dict[str, RowRule]  # the schema's dataframe checks, by name


@dataclass(frozen=True)
class RowRule:
    """How to report a broken row rule: the column to look at, the figures, the rule in words."""

    column: str
    figures: tuple[str, ...]
    message: str


def _columns(model: type[pa.DataFrameModel], kinds: dict[str, str]) -> dict[str, str]:
    """Column kinds in the model's order; `kinds` names those that are not text."""
    return {name: kinds.get(name, "text") for name in model.to_schema().columns}


_MONEY = "money"
EXPORTS = {
    export.stem: export
    for export in (
        Export(
            stem="purchases",
            columns=_columns(
                PurchaseRow,
                {
                    "sdkappid": "int",
                    "gifted_minutes": "int",
                    "purchased_at": "timestamp",
                    "list_price": _MONEY,
                    "discount_amount": _MONEY,
                    "coupon_amount": _MONEY,
                    "paid_cash_credit": _MONEY,
                    "paid_commission_credit": _MONEY,
                    "paid_free_credit": _MONEY,
                },
            ),
            key=("order_id",),
            visible_by="purchased_at",
            row_schema=PurchaseRow,
            row_rules={
                "refundable_amount_identity": RowRule(
                    "paid_cash_credit",
                    _PRICE + _PAID,
                    "list_price - discount_amount - coupon_amount must equal "
                    "paid_cash_credit + paid_commission_credit + paid_free_credit (within 0.01)",
                )
            },
        ),
        Export(
            stem="usage",
            columns=_columns(UsageRow, {"sdkappid": "int", "started_at": "timestamp", "minutes": "minutes"}),
            key=("usage_id",),
            visible_by="started_at",
            row_schema=UsageRow,
            row_rules={},
        ),
        Export(
            stem="refunds",
            columns=_columns(
                RefundRow,
                {
                    "requested_at": "timestamp",
                    "processed_at": "timestamp",
                    "refund_cash_credit": _MONEY,
                    "refund_commission_credit": _MONEY,
                    "refund_free_credit": _MONEY,
                    "refund_amount": _MONEY,
                },
            ),
            key=("refund_id",),
            visible_by="requested_at",
            row_schema=RefundRow,
            row_rules={
                "refund_parts_sum_to_amount": RowRule(
                    "refund_amount",
                    ("refund_amount", *_REFUND_PARTS),
                    "refund_amount must equal refund_cash_credit + refund_commission_credit "
                    "+ refund_free_credit (within 0.01)",
                ),
                "processed_at_null_iff_pending": RowRule(
                    "processed_at",
                    ("status", "processed_at"),
                    "processed_at must be empty exactly when status is pending",
                ),
                "processed_not_before_requested": RowRule(
                    "processed_at",
                    ("requested_at", "processed_at"),
                    "processed_at must not be before requested_at",
                ),
            },
        ),
        Export(
            stem="account_status",
            columns=_columns(AccountStatusRow, {"effective_at": "timestamp"}),
            key=("account_id", "effective_at"),
            visible_by="effective_at",
            row_schema=AccountStatusRow,
            row_rules={},
        ),
    )
}
