"""The row checks: SQL generated from the Pandera models (jobs/stages/checks.py) finds exactly
the failures Pandera's own pandas backend finds, value and message included, row for row."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest

from jobs.stages.checks import UnknownCheck, failures_sql
from jobs.stages.schemas import ARROW_TYPES, EXPORTS, Export, RowRule, Text

VALID_TYPED_ROWS = {
    "purchases": dict(
        order_id="O1",
        account_id="A1",
        entity_id="E1",
        sdkappid=1400000001,
        product="call",
        package_kind="package",
        edition="standard",
        gifted_minutes=1000,
        purchased_at=datetime(2026, 3, 1, 2, tzinfo=UTC),
        currency="USD",
        list_price=Decimal("100.00"),
        discount_amount=Decimal("0.00"),
        coupon_amount=Decimal("0.00"),
        paid_cash_credit=Decimal("100.00"),
        paid_commission_credit=Decimal("0.00"),
        paid_free_credit=Decimal("0.00"),
        payment_fingerprint=None,
    ),
    "usage": dict(
        usage_id="U1",
        order_id="O1",
        sdkappid=1400000001,
        started_at=datetime(2026, 3, 2, 4, tzinfo=UTC),
        minutes=Decimal("10"),
        media_type="audio",
    ),
    "refunds": dict(
        refund_id="R1",
        order_id="O1",
        requested_at=datetime(2026, 3, 2, 4, tzinfo=UTC),
        status="paid",
        processed_at=datetime(2026, 3, 3, 4, tzinfo=UTC),
        currency="USD",
        refund_cash_credit=Decimal("100.00"),
        refund_commission_credit=Decimal("0.00"),
        refund_free_credit=Decimal("0.00"),
        refund_amount=Decimal("100.00"),
    ),
    "account_status": dict(
        account_id="A1",
        status="suspended",
        reason="content_violation",
        effective_at=datetime(2026, 3, 2, 1, tzinfo=UTC),
    ),
}


def typed_rows(stem: str, rows: list[dict]) -> pyarrow.Table:
    """Rows with the loader's Arrow types and `_line` 2, 3, ...: each a valid row with overrides."""
    export = EXPORTS[stem]
    schema = pyarrow.schema(
        [("_line", pyarrow.int64())] + [(name, ARROW_TYPES[kind]) for name, kind in export.columns.items()]
    )
    return pyarrow.Table.from_pylist(
        [VALID_TYPED_ROWS[stem] | {"_line": line} | row for line, row in enumerate(rows, start=2)], schema=schema
    )


def sql_failures(export: Export, table: pyarrow.Table) -> list[tuple]:
    """(line, column, check, value, message) from the generated SQL, in a session far from UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.from_arrow(table).create("typed")
    return sorted(con.execute(f"SELECT * EXCLUDE (source) FROM ({failures_sql(export, 'typed')})").fetchall())


def pandera_failures(export: Export, table: pyarrow.Table) -> list[tuple]:
    """The same, from Pandera's pandas backend on an Arrow-backed frame: how validation ran before #12."""
    frame = table.to_pandas(types_mapper=pd.ArrowDtype).set_index("_line")
    try:
        export.row_schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as failed:
        cases = failed.failure_cases
    else:
        return []
    found = []
    for case in cases[cases["schema_context"] == "Column"].to_dict("records"):
        value = None if pd.isna(case["failure_case"]) else str(case["failure_case"])
        check = str(case["check"])
        found.append(
            (int(case["index"]), case["column"], check.split("(")[0], value, _wording(case["column"], check, value))
        )
    row_checks = cases[cases["schema_context"] == "DataFrameSchema"]
    for (name, line), rows in row_checks.groupby(["check", "index"], sort=True):
        rule = export.row_rules[str(name)]
        figures = dict(zip(rows["column"], rows["failure_case"], strict=True))
        value = ", ".join(
            f"{column}={'empty' if pd.isna(figures.get(column)) else figures[column]}" for column in rule.figures
        )
        found.append((int(line), rule.column, str(name), value, rule.message))
    return sorted(found)


def _wording(column: str, check: str, value: str | None) -> str:
    if check == "not_nullable":
        return f"{column} is required but empty"
    name, _, argument = check.partition("(")
    argument = argument.rstrip(")")
    wording = {
        "greater_than": f"greater than {argument}",
        "greater_than_or_equal_to": f"at least {argument}",
        "isin": "one of " + ", ".join(re.findall(r"'([^']*)'", argument)),
        "str_matches": f"text matching {argument}",
    }[name]
    return f"{column} must be {wording}, got {value!r}"


D = Decimal
# (export, overrides of its valid row, the (column, check) pairs that fail: none for a row that passes)
CASES = [
    ("purchases", {}, set()),
    ("purchases", {"order_id": None}, {("order_id", "not_nullable")}),
    ("purchases", {"sdkappid": 0}, {("sdkappid", "greater_than")}),
    ("purchases", {"sdkappid": 1}, set()),
    ("purchases", {"product": "tv"}, {("product", "isin")}),
    ("purchases", {"product": "it's"}, {("product", "isin")}),
    ("purchases", {"product": 'say "hi"\\n'}, {("product", "isin")}),
    ("purchases", {"package_kind": "bundle\t\r\n"}, {("package_kind", "isin")}),
    ("purchases", {"currency": "usd"}, {("currency", "str_matches")}),
    ("purchases", {"currency": "USD\n"}, {("currency", "str_matches")}),
    ("purchases", {"currency": "USDX"}, {("currency", "str_matches")}),
    ("purchases", {"gifted_minutes": -1}, {("gifted_minutes", "greater_than_or_equal_to")}),
    ("purchases", {"gifted_minutes": None}, set()),  # nullable: a missing value passes its check
    ("purchases", {"gifted_minutes": 0}, set()),
    (
        "purchases",
        {"discount_amount": D("-1.00"), "paid_cash_credit": D("101.00")},
        {("discount_amount", "greater_than_or_equal_to")},
    ),
    ("purchases", {"paid_cash_credit": D("99.99")}, set()),  # within a cent
    ("purchases", {"paid_cash_credit": D("100.01")}, set()),
    ("purchases", {"paid_cash_credit": D("99.98")}, {("paid_cash_credit", "refundable_amount_identity")}),
    ("purchases", {"paid_free_credit": D("0.02")}, {("paid_cash_credit", "refundable_amount_identity")}),
    (  # a missing amount fails as missing, not also as a broken identity
        "purchases",
        {"coupon_amount": None},
        {("coupon_amount", "not_nullable")},
    ),
    ("usage", {}, set()),
    ("usage", {"sdkappid": 0}, {("sdkappid", "greater_than")}),
    ("usage", {"minutes": D("-0.000001")}, {("minutes", "greater_than_or_equal_to")}),
    ("usage", {"minutes": D("0")}, set()),
    ("usage", {"media_type": "smell"}, {("media_type", "isin")}),
    ("usage", {"started_at": None}, {("started_at", "not_nullable")}),
    ("usage", {"order_id": None}, set()),
    ("refunds", {}, set()),
    ("refunds", {"status": "done"}, {("status", "isin")}),
    ("refunds", {"currency": "US"}, {("currency", "str_matches")}),
    (
        "refunds",
        {"refund_free_credit": D("-1.00"), "refund_cash_credit": D("101.00")},
        {("refund_free_credit", "greater_than_or_equal_to")},
    ),
    ("refunds", {"refund_amount": D("100.01")}, set()),
    ("refunds", {"refund_amount": D("100.02")}, {("refund_amount", "refund_parts_sum_to_amount")}),
    ("refunds", {"refund_amount": D("-100.00")}, {("refund_amount", "refund_parts_sum_to_amount")}),
    ("refunds", {"processed_at": None}, {("processed_at", "processed_at_null_iff_pending")}),
    ("refunds", {"status": "pending"}, {("processed_at", "processed_at_null_iff_pending")}),
    ("refunds", {"status": "pending", "processed_at": None}, set()),
    (  # no status: quarantined as missing, and processed_at cannot be judged against it
        "refunds",
        {"status": None, "processed_at": None},
        {("status", "not_nullable"), ("processed_at", "processed_at_null_iff_pending")},
    ),
    (
        "refunds",
        {"processed_at": datetime(2026, 3, 2, 3, 59, 59, 999999, tzinfo=UTC)},
        {("processed_at", "processed_not_before_requested")},
    ),
    ("refunds", {"processed_at": datetime(2026, 3, 2, 4, tzinfo=UTC)}, set()),  # the same instant
    ("account_status", {}, set()),
    ("account_status", {"status": "frozen"}, {("status", "isin")}),
    ("account_status", {"reason": "spam"}, {("reason", "isin")}),
    ("account_status", {"reason": None}, set()),
    ("account_status", {"effective_at": None}, {("effective_at", "not_nullable")}),
]


@pytest.mark.parametrize(
    "stem, overrides, failing", CASES, ids=[f"{stem}-{sorted(row.items())}" for stem, row, _ in CASES]
)
def test_the_generated_sql_finds_what_pandera_finds(stem, overrides, failing):
    table = typed_rows(stem, [{}, overrides])
    found = sql_failures(EXPORTS[stem], table)
    assert found == pandera_failures(EXPORTS[stem], table)
    assert {(column, check) for _, column, check, _, _ in found} == failing
    assert {line for line, *_ in found} <= {3}  # the valid row before it passes


def test_many_bad_rows_are_reported_each_at_its_line():
    rows = [
        {"minutes": D(f"-{n}")} if n % 3 == 0 else {"media_type": None} if n % 3 == 1 else {} for n in range(1, 301)
    ]
    table = typed_rows("usage", rows)
    found = sql_failures(EXPORTS["usage"], table)
    assert found == pandera_failures(EXPORTS["usage"], table)
    assert len(found) == 200


class WithAnUnknownCheck(pa.DataFrameModel):
    name: Text = pa.Field(str_length={"min_value": 1})


class WithARowCheckWithoutSql(pa.DataFrameModel):
    name: Text = pa.Field()

    @pa.dataframe_check(name="named")
    def named(cls, rows: pd.DataFrame) -> pd.Series:
        return rows["name"].notna()


@pytest.mark.parametrize(
    "model, rules, named",
    [
        (WithAnUnknownCheck, {}, "WithAnUnknownCheck.name: check str_length"),
        (WithARowCheckWithoutSql, {"named": RowRule("name", ("name",), "a name")}, "row check named has no SQL twin"),
    ],
)
def test_a_check_without_a_sql_form_stops_the_run_naming_it(model, rules, named):
    export = Export("things", {"name": "text"}, ("name",), "name", model, rules)
    with pytest.raises(UnknownCheck, match=re.escape(named)):
        failures_sql(export, "things")
