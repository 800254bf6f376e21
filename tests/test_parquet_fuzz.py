"""Fuzzing Parquet exports (issue #10): whatever types a writer picks, every row is loaded with
its exact value or quarantined, and rows in = rows loaded + rows quarantined.

A usage export is written as Parquet with each number or timestamp column drawn in one of the
types a writer may use, and its values drawn per row. What each value must load as is computed
here, independently of the loader:

| column type                  | loads as                                                      | else            |
|------------------------------|---------------------------------------------------------------|-----------------|
| integer (signed or not)      | the integer, if the column's range holds it                   | `type`          |
| float64, float32             | its shortest decimal text (repr; numpy for float32), if (1)   | `type`, NaN, inf|
| DECIMAL(p, s), any scale     | its value, same conditions                                    | `type`          |
| text                         | the number or ISO 8601 instant it spells                      | `type`          |
| TIMESTAMP s/ms/us/ns, any zone or none | the instant, cut to the microsecond; naive = billing time (UTC+8) | -      |
| BLOB, STRUCT, BOOLEAN        | nothing                                                       | `type`          |

(1) it has no more decimals than the column allows and the column's range holds it.

Any value may be null (the columns are required: `not_nullable`). A row loads when each of
its values loads and sdkappid > 0, minutes >= 0; otherwise it is quarantined, with a `type`
entry for each value that did not load.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Context, Decimal
from pathlib import Path

import numpy
import pyarrow
import pyarrow.parquet
import pytest
from exports import AS_OF, purchase, write_exports
from fuzzing import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import core as hypothesis_core
from hypothesis import strategies as st

from jobs.config import Settings
from jobs.pipeline import run

BILLING = timezone(timedelta(hours=8))  # Asia/Shanghai, the default billing time zone
TYPE_ERROR = "type"
INT64 = (-(2**63), 2**63 - 1)
LIMITS = {"sdkappid": (0, 10**19), "minutes": (6, 10**12)}  # column -> (decimals allowed, bound of its magnitude)
EXACT = Context(prec=100)


@dataclass
class Column:
    """A drawn Parquet column and what each of its values must load as (None: null)."""

    values: pyarrow.Array
    expected: list


def number_outcome(value: Decimal | None, column: str):
    """What a number stands for in `column`: its exact value, None for null, or TYPE_ERROR."""
    if value is None:
        return None
    decimals, bound = LIMITS[column]
    if not value.is_finite() or value != value.quantize(Decimal(1).scaleb(-decimals), context=EXACT):
        return TYPE_ERROR
    if column == "sdkappid":
        return int(value) if INT64[0] <= value <= INT64[1] else TYPE_ERROR
    return value if abs(value) < bound else TYPE_ERROR


def shortest(value: float, float32: bool) -> Decimal:
    """The decimal a float stands for: its shortest text (numpy's for float32, repr's for float64)."""
    return Decimal(str(numpy.float32(value)) if float32 else repr(value))


def nullable(values):
    return st.one_of(st.none(), values) if values is not None else st.none()


@st.composite
def number_columns(draw, column: str, rows: int) -> Column:
    kind = draw(st.sampled_from(["int64", "uint64", "float64", "float32", "decimal", "text", "odd"]))
    if kind in ("int64", "uint64"):
        low, high = (1, 2**63 - 1) if kind == "int64" else (0, 2**64 - 1)
        values = draw(
            st.lists(nullable(st.one_of(st.integers(low, high), st.integers(low, 10**6))), min_size=rows, max_size=rows)
        )
        return Column(
            pyarrow.array(values, pyarrow.int64() if kind == "int64" else pyarrow.uint64()),
            [number_outcome(None if v is None else Decimal(v), column) for v in values],
        )
    if kind in ("float64", "float32"):
        width = 32 if kind == "float32" else 64
        floats = st.one_of(
            st.floats(width=width),
            st.integers(0, 10**7).map(lambda n: n / 100),
            st.integers(0, 2**53).map(float),
            st.sampled_from([1e-05, 1.5e-05, 1e-07, 1e16, 0.1]),
        )
        values = draw(st.lists(nullable(floats), min_size=rows, max_size=rows))
        return Column(
            pyarrow.array(values, pyarrow.float32() if width == 32 else pyarrow.float64()),
            [number_outcome(None if v is None else shortest(v, width == 32), column) for v in values],
        )
    if kind == "decimal":
        scale = draw(st.integers(0, 12))
        digits = st.integers(-(10**30), 10**30).map(lambda n: Decimal(n).scaleb(-scale))
        values = draw(st.lists(nullable(digits), min_size=rows, max_size=rows))
        return Column(pyarrow.array(values, pyarrow.decimal128(38, scale)), [number_outcome(v, column) for v in values])
    if kind == "text":
        texts = st.one_of(st.integers(-10, 10**20).map(str), st.sampled_from(["1.5", "10.25", "1e3", "x", "1,000"]))
        values = draw(st.lists(nullable(texts), min_size=rows, max_size=rows))
        return Column(pyarrow.array(values, pyarrow.string()), [text_number_outcome(v, column) for v in values])
    return odd_column(draw, rows)


def text_number_outcome(text: str | None, column: str):
    """A number given as text: plain digits with at most the column's decimals, nothing else."""
    if text is None:
        return None
    whole, _, fraction = text.lstrip("+-").partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > LIMITS[column][0]:
        return TYPE_ERROR
    return number_outcome(Decimal(text), column)


def odd_column(draw, rows: int) -> Column:
    """A column of a type that holds no number or instant: each non-null value is a type error."""
    arrow_type, value = draw(
        st.sampled_from(
            [
                (pyarrow.binary(), b"1"),
                (pyarrow.bool_(), True),
                (pyarrow.struct([("value", pyarrow.int64())]), {"value": 1}),
            ]
        )
    )
    present = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    return Column(
        pyarrow.array([value if kept else None for kept in present], arrow_type),
        [TYPE_ERROR if kept else None for kept in present],
    )


FIRST, LAST = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)
UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


@st.composite
def timestamp_columns(draw, rows: int) -> Column:
    kind = draw(st.sampled_from(["timestamp", "timestamp", "text", "odd"]))
    if kind == "odd":
        return odd_column(draw, rows)
    if kind == "text":
        texts = st.one_of(
            st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None)).map(
                lambda moment: moment.isoformat(sep=draw(st.sampled_from([" ", "T"])))
            ),
            st.sampled_from(["infinity", "-infinity", "epoch", "2026-2-3 10:00", "2026-03-02 10:00 Asia/Tokyo", "PST"]),
        )
        values = draw(st.lists(nullable(texts), min_size=rows, max_size=rows))
        return Column(pyarrow.array(values, pyarrow.string()), [text_instant(v) for v in values])
    unit = draw(st.sampled_from(sorted(UNITS)))
    zone = draw(st.sampled_from([None, "UTC", "Asia/Tokyo", "America/New_York", "+05:30"]))
    per_second = UNITS[unit]
    span = (int(FIRST.timestamp()) * per_second, int(LAST.timestamp()) * per_second)
    values = draw(st.lists(nullable(st.integers(*span)), min_size=rows, max_size=rows))
    return Column(
        pyarrow.array(values, pyarrow.timestamp(unit, tz=zone)),
        [None if v is None else instant(v, per_second, naive=zone is None) for v in values],
    )


def instant(value: int, per_second: int, naive: bool) -> datetime:
    """A Parquet timestamp's instant in UTC, cut to the microsecond; naive values are billing time."""
    microseconds = value * 10**6 // per_second
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)
    return moment.replace(tzinfo=BILLING).astimezone(UTC) if naive else moment


def text_instant(text: str | None):
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=BILLING).astimezone(UTC)
    except ValueError:
        return TYPE_ERROR


@dataclass
class ParquetCase:
    rows: int
    columns: dict[str, Column]

    def table(self) -> pyarrow.Table:
        text = {
            "usage_id": pyarrow.array([f"U{row}" for row in range(1, self.rows + 1)]),
            "order_id": pyarrow.nulls(self.rows, pyarrow.string()),
            "media_type": pyarrow.array(["audio"] * self.rows),
        }
        return pyarrow.table(text | {name: column.values for name, column in self.columns.items()})

    def outcome(self, row: int) -> dict:
        return {name: column.expected[row] for name, column in self.columns.items()}


@st.composite
def parquet_cases(draw) -> ParquetCase:
    rows = draw(st.integers(1, 6))
    return ParquetCase(
        rows,
        {
            "sdkappid": draw(number_columns("sdkappid", rows)),
            "minutes": draw(number_columns("minutes", rows)),
            "started_at": draw(timestamp_columns(rows)),
        },
    )


def loads(outcome: dict) -> bool:
    """Whether a row with these values passes every check (the three columns are required)."""
    if any(value is None or value is TYPE_ERROR or value == TYPE_ERROR for value in outcome.values()):
        return False
    return outcome["sdkappid"] > 0 and outcome["minutes"] >= 0


FUZZ = settings(
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=hypothesis_core.global_force_seed is None,
)


@pytest.mark.fuzz
@FUZZ
@given(parquet_cases())
def test_every_parquet_row_loads_exactly_or_is_quarantined(case):
    with tempfile.TemporaryDirectory() as directory:
        folder = write_exports(Path(directory) / "in", purchases=[purchase()])
        (folder / "usage.csv").unlink()
        pyarrow.parquet.write_table(case.table(), folder / "usage.parquet")
        result = run(Settings(max_bad_row_fraction=1.0), folder, AS_OF, db_path=None)
        loaded = {
            line: (sdkappid, minutes, started_at)
            for line, sdkappid, minutes, started_at in result.con.execute(
                "SELECT _line, sdkappid, minutes, timezone('UTC', started_at) FROM delivered_usage"
            ).fetchall()
        }
        entries = set(
            result.con.execute('SELECT line, "column", "check" FROM quarantine WHERE source = \'usage\'').fetchall()
        )
        counts = result.files["usage"]

    quarantined = {line for line, _, _ in entries}
    for row in range(case.rows):
        line, outcome = row + 1, case.outcome(row)
        if loads(outcome):
            expected = (outcome["sdkappid"], outcome["minutes"], outcome["started_at"].replace(tzinfo=None))
            assert loaded.get(line) == expected, (line, outcome, loaded.get(line))
        else:
            assert line in quarantined and line not in loaded, (line, outcome, entries)
        for name, value in outcome.items():
            assert ((line, name, "type") in entries) == (value == TYPE_ERROR), (line, name, value, entries)
    assert (counts.rows_read, counts.rows_after_as_of) == (case.rows, 0), counts
    assert counts.rows_in == counts.rows_loaded + counts.rows_quarantined == len(loaded) + len(quarantined), counts
