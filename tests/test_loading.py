"""Loading (SPEC section 2): finding the four exports, structural errors, reading CSV, CSV.gz
and Parquet into typed rows with the right line numbers.

The cases run the night's load and validate stages alone (tests/loads.py); the command line's
structural errors and the night of the largest amounts run whole."""

from __future__ import annotations

import gzip
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow
import pyarrow.parquet
import pytest
from click.testing import CliRunner
from exports import error_lines, purchase, refund, usage, write_exports
from loads import load_folder, load_night

from jobs.cli import main
from jobs.config import Settings
from jobs.stages.loading import StructuralError
from jobs.stages.schemas import EXPORTS, KIND_WORDS

USAGE_HEADER = ",".join(EXPORTS["usage"].columns)


def usage_csv(folder: Path, *lines: str) -> Path:
    """Replace usage.csv with the header and the given raw lines (each ends with a newline)."""
    path = folder / "usage.csv"
    path.write_text(USAGE_HEADER + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8", newline="")
    return path


def errors(result, source: str) -> list[tuple]:
    """(line, column, check) of every quarantine entry of one export, in line order."""
    return result.con.execute(
        'SELECT line, "column", "check" FROM quarantine WHERE source = ? ORDER BY line, "check"', [source]
    ).fetchall()


def loaded_lines(result, table: str, key: str) -> list[tuple]:
    return result.con.execute(f"SELECT _line, {key} FROM delivered_{table} ORDER BY _line").fetchall()


# --- finding the exports ----------------------------------------------------------------------


def test_a_missing_export_is_a_structural_error_naming_it(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").unlink()
    with pytest.raises(StructuralError, match=r"missing export 'usage'"):
        load_folder(folder)


def test_two_files_for_one_stem_are_a_structural_error_naming_both(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    with gzip.open(folder / "usage.csv.gz", "wt", encoding="utf-8") as stream:
        stream.write(USAGE_HEADER + "\n")
    with pytest.raises(StructuralError) as raised:
        load_folder(folder)
    assert "usage.csv" in str(raised.value) and "usage.csv.gz" in str(raised.value)


def test_a_missing_required_column_names_the_file_and_the_column(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    columns = [name for name in EXPORTS["refunds"].columns if name != "currency"]
    (folder / "refunds.csv").write_text(",".join(columns) + "\n", encoding="utf-8")
    with pytest.raises(StructuralError) as raised:
        load_folder(folder)
    message = str(raised.value)
    assert "refunds.csv" in message
    assert "missing required column 'currency'" in message


def test_an_empty_file_is_a_structural_error_naming_it(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "account_status.csv").write_bytes(b"")
    with pytest.raises(StructuralError, match=r"account_status\.csv.*empty"):
        load_folder(folder)


def test_a_header_only_file_loads_zero_rows(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])  # the other three: header only
    result = load_folder(folder)
    counts = result.files["usage"]
    assert (counts.rows_read, counts.rows_in, counts.rows_loaded, counts.rows_quarantined) == (0, 0, 0, 0)
    assert result.con.execute("SELECT count(*) FROM delivered_usage").fetchone()[0] == 0
    assert result.files["purchases"].rows_loaded == 1


def test_a_parquet_file_that_is_not_parquet_is_a_structural_error(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").rename(folder / "usage.parquet")  # CSV text under a Parquet name
    with pytest.raises(StructuralError, match=r"usage\.parquet: cannot be read as a Parquet file"):
        load_folder(folder)


def test_a_csv_gz_that_is_not_gzip_is_a_structural_error(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").rename(folder / "usage.csv.gz")  # plain text under a .gz name
    with pytest.raises(StructuralError, match=r"usage\.csv\.gz"):
        load_folder(folder)


def test_a_parquet_export_missing_a_required_column_names_the_file_and_the_column(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").unlink()
    duckdb.sql(f"COPY (SELECT 'U1' AS usage_id, 'O1' AS order_id) TO '{folder / 'usage.parquet'}' (FORMAT parquet)")
    with pytest.raises(StructuralError, match=r"usage\.parquet: missing required column 'sdkappid'"):
        load_folder(folder)


# --- formats --------------------------------------------------------------------------------


def _csv_to_parquet(csv_path: Path) -> Path:
    parquet_path = csv_path.with_suffix(".parquet")
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{csv_path}', all_varchar = true, header = true)) "
        f"TO '{parquet_path}' (FORMAT parquet)"
    )
    csv_path.unlink()
    return parquet_path


def test_a_parquet_export_loads_with_1_based_row_numbers_as_lines(tmp_path):
    folder = write_exports(
        tmp_path / "in",
        purchases=[purchase()],
        usage=[usage(usage_id="U1"), usage(usage_id="U2", media_type="smell"), usage(usage_id="U3")],
    )
    _csv_to_parquet(folder / "usage.csv")
    result = load_folder(folder)
    assert loaded_lines(result, "usage", "usage_id") == [(1, "U1"), (3, "U3")]
    assert errors(result, "usage") == [(2, "media_type", "isin")]


def test_a_parquet_export_with_native_types_loads_them(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").unlink()
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES "
        "('U1', 'O1', 1400000001::BIGINT, TIMESTAMP '2026-03-02 12:00:00', 10.5::DECIMAL(18,6), 'audio'), "
        "('U2', 'O1', 0::BIGINT, TIMESTAMP '2026-03-02 12:00:00', 1::DECIMAL(18,6), 'audio')"
        ") AS t(usage_id, order_id, sdkappid, started_at, minutes, media_type)) "
        f"TO '{folder / 'usage.parquet'}' (FORMAT parquet)"
    )
    result = load_folder(folder)
    assert result.con.execute(
        "SELECT _line, minutes, started_at = TIMESTAMPTZ '2026-03-02 04:00:00+00' FROM delivered_usage"
    ).fetchall() == [(1, Decimal("10.5"), True)]
    assert errors(result, "usage") == [(2, "sdkappid", "greater_than")]


def test_parquet_amounts_with_a_wider_scale_load_when_exact_and_are_type_errors_otherwise(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").unlink()
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES "
        "('U1', 'O1', 1400000001, TIMESTAMP '2026-03-02 12:00:00', 10.5::DOUBLE, 'audio'), "
        "('U2', 'O1', 1400000001, TIMESTAMP '2026-03-02 12:00:00', 0.0000001::DOUBLE, 'audio')"
        ") AS t(usage_id, order_id, sdkappid, started_at, minutes, media_type)) "
        f"TO '{folder / 'usage.parquet'}' (FORMAT parquet)"
    )
    result = load_folder(folder)
    assert result.con.execute("SELECT usage_id, minutes FROM delivered_usage").fetchall() == [("U1", Decimal("10.5"))]
    assert errors(result, "usage") == [(2, "minutes", "type")]


def test_an_unnamed_trailing_column_is_an_extra_column(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    lines = (folder / "purchases.csv").read_text(encoding="utf-8").splitlines()
    (folder / "purchases.csv").write_text("".join(f"{line},\n" for line in lines), encoding="utf-8")
    result = load_folder(folder)
    assert errors(result, "purchases") == []
    assert result.con.execute("SELECT extra_columns FROM run_inputs WHERE source = 'purchases'").fetchone()[0] == [
        f"column{len(EXPORTS['purchases'].columns) + 1}"
    ]


def test_a_csv_gz_export_loads_like_the_csv(tmp_path):
    folder = write_exports(
        tmp_path / "in", purchases=[purchase()], usage=[usage(usage_id="U1"), usage(usage_id="U2", minutes="x")]
    )
    plain = folder / "usage.csv"
    with gzip.open(folder / "usage.csv.gz", "wb") as stream:
        stream.write(plain.read_bytes())
    plain.unlink()
    result = load_folder(folder)
    assert loaded_lines(result, "usage", "usage_id") == [(2, "U1")]
    assert errors(result, "usage") == [(3, "minutes", "type")]


@pytest.mark.parametrize("extra", ["note", "Status", "ORDER_ID"])  # the last two differ from SPEC columns by case only
def test_extra_columns_are_kept_and_ignored(tmp_path, extra):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    text = (folder / "purchases.csv").read_text(encoding="utf-8").splitlines()
    (folder / "purchases.csv").write_text(f"{text[0]},{extra}\n{text[1]},not a number\n", encoding="utf-8")
    result = load_folder(folder)
    assert errors(result, "purchases") == []
    assert result.con.execute(f"SELECT order_id, _extra_columns['{extra}'] FROM delivered_purchases").fetchall() == [
        ("O1", "not a number")
    ]
    assert result.con.execute("SELECT extra_columns FROM run_inputs WHERE source = 'purchases'").fetchone()[0] == [
        extra
    ]


def test_a_utf8_byte_order_mark_before_the_header_is_accepted(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    path = folder / "purchases.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = load_folder(folder)
    assert loaded_lines(result, "purchases", "order_id") == [(2, "O1")]


# --- values -----------------------------------------------------------------------------------


def test_naive_timestamps_are_billing_time_and_offsets_are_honoured(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[
            purchase(order_id="O1", purchased_at="2026-03-01 00:30:00"),
            purchase(order_id="O2", purchased_at="2026-03-01T00:30:00+08:00"),
            purchase(order_id="O3", purchased_at="2026-02-28T16:30:00Z"),
        ],
    )
    assert night.con.execute(
        "SELECT order_id FROM purchases WHERE purchased_at = TIMESTAMPTZ '2026-02-28 16:30:00+00' ORDER BY order_id"
    ).fetchall() == [("O1",), ("O2",), ("O3",)]


def test_naive_timestamps_follow_the_configured_billing_time_zone(tmp_path):
    night = load_night(
        tmp_path,
        settings=Settings(max_bad_row_fraction=1.0, billing_time_zone="UTC"),
        purchases=[purchase(purchased_at="2026-03-01 00:30:00")],
    )
    assert (
        night.con.execute(
            "SELECT purchased_at = TIMESTAMPTZ '2026-03-01 00:30:00+00' FROM delivered_purchases"
        ).fetchone()[0]
        is True
    )


def test_money_is_exact_decimal_never_float(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[
            purchase(
                list_price="0.30",
                paid_cash_credit="0.10",
                paid_commission_credit="0.20",
                paid_free_credit="0.00",
            )
        ],
    )
    assert night.con.execute(
        "SELECT typeof(list_price), paid_cash_credit + paid_commission_credit = list_price, "
        "CAST(paid_cash_credit + paid_commission_credit AS VARCHAR) FROM delivered_purchases"
    ).fetchone() == ("DECIMAL(18,2)", True, "0.30")


def test_money_with_three_decimals_is_a_type_error_not_rounded(tmp_path):
    night = load_night(
        tmp_path, purchases=[purchase()], refunds=[refund(refund_cash_credit="1.005", refund_amount="1.005")]
    )
    assert sorted((e["line"], e["column"], e["check"], e["value"]) for e in night.errors("refunds")) == [
        (2, "refund_amount", "type", "1.005"),
        (2, "refund_cash_credit", "type", "1.005"),
    ]
    assert night.loaded_keys("refunds", "refund_id") == []


# --- CSV line numbers -------------------------------------------------------------------------


def test_a_row_after_a_quoted_field_with_a_newline_gets_its_physical_line(tmp_path):
    night = load_night(
        tmp_path,
        purchases=[
            purchase(order_id="O1", edition="two\nlines"),  # lines 2-3
            purchase(order_id="O2", edition="three\nmore\nlines"),  # lines 4-6
            purchase(order_id="O3", product="tv"),  # line 7
        ],
    )
    assert night.loaded_keys("purchases", "_line") == [2, 4]
    assert [(e["line"], e["check"]) for e in night.errors("purchases")] == [(7, "isin")]


def test_a_row_with_too_few_fields_is_quarantined_at_its_line(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    usage_csv(
        folder,
        "U1,O1,1400000001,2026-03-02 12:00:00,10,audio",
        "U2,O1,1400000001,2026-03-02 12:00:00,10",
        "U3,O1,1400000001,2026-03-02 12:00:00,10,bogus",
    )
    result = load_folder(folder)
    assert [(line, check) for line, _, check in errors(result, "usage")] == [(3, "csv_row"), (4, "isin")]
    assert loaded_lines(result, "usage", "usage_id") == [(2, "U1")]


def test_a_row_with_too_many_fields_is_quarantined_at_its_line(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    usage_csv(
        folder,
        "U1,O1,1400000001,2026-03-02 12:00:00,10,audio,surplus",
        "U2,O1,1400000001,2026-03-02 12:00:00,10,bogus",
        "U3,O1,1400000001,2026-03-02 12:00:00,10,audio",
    )
    result = load_folder(folder)
    assert [(line, check) for line, _, check in errors(result, "usage")] == [(2, "csv_row"), (3, "isin")]
    assert loaded_lines(result, "usage", "usage_id") == [(4, "U3")]


def test_an_empty_last_field_loads_but_an_empty_field_too_many_is_quarantined(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase(order_id="O1"), purchase(order_id="O2")])
    path = folder / "purchases.csv"
    header, first, second = path.read_text(encoding="utf-8").splitlines()
    assert first.endswith(",") and second.endswith(",")  # payment_fingerprint, the last column, is empty
    path.write_text(f"{header}\n{first}\n{second},\n", encoding="utf-8")
    result = load_folder(folder)
    assert loaded_lines(result, "purchases", "order_id") == [(2, "O1")]
    assert [(line, check) for line, _, check in errors(result, "purchases")] == [(3, "csv_row")]


def test_ragged_and_multi_line_rows_together_keep_every_later_line_right(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    usage_csv(
        folder,
        'U1,O1,1400000001,2026-03-02 12:00:00,10,"au\ndio"',  # lines 2-3 (bad enum)
        "U2,O1,1400000001,2026-03-02 12:00:00,10",  # line 4 (ragged)
        'U3,O1,1400000001,"2026-03-02\n12:00:00",10',  # lines 5-6 (ragged)
        "U4,O1,1400000001,2026-03-02 12:00:00,10,audio",  # line 7
        "U5,O1,1400000001,2026-03-02 12:00:00,10,bogus",
    )  # line 8
    result = load_folder(folder)
    assert [(line, check) for line, _, check in errors(result, "usage")] == [
        (2, "isin"),
        (4, "csv_row"),
        (5, "csv_row"),
        (8, "isin"),
    ]
    assert loaded_lines(result, "usage", "usage_id") == [(7, "U4")]
    counts = result.files["usage"]
    assert (counts.rows_in, counts.rows_loaded, counts.rows_quarantined) == (5, 1, 4)


def test_a_blank_line_does_not_shift_the_lines_of_later_rows(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    usage_csv(
        folder,
        "U1,O1,1400000001,2026-03-02 12:00:00,10,audio",  # line 2
        "",  # line 3
        "U2,O1,1400000001,2026-03-02 12:00:00,10,bogus",
    )  # line 4
    result = load_folder(folder)
    assert loaded_lines(result, "usage", "usage_id") == [(2, "U1")]
    assert (4, "media_type", "isin") in errors(result, "usage")
    counts = result.files["usage"]
    assert counts.rows_in == counts.rows_loaded + counts.rows_quarantined


def test_columns_are_found_by_name_in_any_order(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "usage.csv").write_text(
        "media_type,minutes,usage_id,started_at,sdkappid,order_id\n"
        "audio,10.5,U1,2026-03-02 12:00:00,1400000001,O1\n"
        "bogus,10,U2,2026-03-02 12:00:00,1400000001,O1\n",
        encoding="utf-8",
    )
    result = load_folder(folder)
    assert result.con.execute(
        "SELECT _line, usage_id, order_id, sdkappid, minutes, media_type FROM delivered_usage"
    ).fetchall() == [
        (2, "U1", "O1", 1400000001, Decimal("10.5"), "audio"),
    ]
    assert errors(result, "usage") == [(3, "media_type", "isin")]


# --- structural errors on the command line ----------------------------------------------------


def test_a_structural_error_on_the_command_line_prints_one_line_exits_1_and_writes_nothing(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    (folder / "refunds.csv").unlink()
    db = tmp_path / "out" / "recon.duckdb"
    result = CliRunner().invoke(main, ["run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31"])
    assert result.exit_code == 1
    lines = error_lines(result.output.strip())
    assert len(lines) == 1 and "refunds" in lines[0]
    assert "Traceback" not in result.output
    assert not db.exists()


# --- Parquet values: floats, decimals, timestamps and types that cannot hold a column ------------


def write_parquet(folder: Path, stem: str, row: dict, **columns: pyarrow.Array) -> None:
    """Replace `<stem>.csv` by a Parquet file of one row: `row` as text, `columns` as given."""
    table = pyarrow.table({name: pyarrow.array([str(value)]) for name, value in row.items()})
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    (folder / f"{stem}.csv").unlink()
    pyarrow.parquet.write_table(table, folder / f"{stem}.parquet")


def load_one_parquet_row(tmp_path, stem: str, **columns: pyarrow.Array):
    """Run a night whose `stem` export is one Parquet row (the builder's, with `columns`)."""
    builders = {"usage": usage, "refunds": refund}
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    write_parquet(folder, stem, builders[stem](), **columns)
    return load_folder(folder)


MONEY = ("refund_cash_credit", "refund_amount")  # set together, so that the refund's parts add up
PARQUET_NUMBERS = {  # case: (columns, Arrow values, the value loaded, or None and the text a type error shows)
    "an id written as a double": (("sdkappid",), pyarrow.array([1400690315.0]), 1400690315, None),
    "an id written as a float": (("sdkappid",), pyarrow.array([16777216.0], pyarrow.float32()), 16777216, None),
    "an id with a fraction": (("sdkappid",), pyarrow.array([1400690315.5]), None, "1400690315.5"),
    "an id over INT64 as a double": (("sdkappid",), pyarrow.array([1e19]), None, "1e+19"),
    "an id over INT64 as UBIGINT": (("sdkappid",), pyarrow.array([2**63 + 5], pyarrow.uint64()), None, str(2**63 + 5)),
    "an id over INT64 as DECIMAL(38,0)": (
        ("sdkappid",),
        pyarrow.array([Decimal(10**20)], pyarrow.decimal128(38, 0)),
        None,
        str(10**20),
    ),
    "an id as NaN": (("sdkappid",), pyarrow.array([float("nan")]), None, "nan"),
    "minutes 809.1": (("minutes",), pyarrow.array([809.1]), Decimal("809.1"), None),
    "minutes 1.5e-05": (("minutes",), pyarrow.array([1.5e-05]), Decimal("0.000015"), None),
    "minutes 0.1 as a float": (("minutes",), pyarrow.array([0.1], pyarrow.float32()), Decimal("0.1"), None),
    "minutes 1e-07": (("minutes",), pyarrow.array([1e-07]), None, "1e-07"),
    "minutes 1e-11": (("minutes",), pyarrow.array([1e-11]), None, "1e-11"),
    "minutes over 12 integer digits": (("minutes",), pyarrow.array([1e13]), None, "10000000000000.0"),
    "minutes infinite": (("minutes",), pyarrow.array([float("inf")]), None, "inf"),
    "money 1234567.89": (MONEY, pyarrow.array([1234567.89]), Decimal("1234567.89"), None),
    "money 809.1": (MONEY, pyarrow.array([809.1]), Decimal("809.10"), None),
    "money 0.3 as a float": (MONEY, pyarrow.array([0.3], pyarrow.float32()), Decimal("0.30"), None),
    "money 0.125": (MONEY, pyarrow.array([0.125]), None, "0.125"),
    "money -infinity": (MONEY, pyarrow.array([float("-inf")]), None, "-inf"),
    "money 1e+16": (MONEY, pyarrow.array([1e16]), None, "1e+16"),
    "money as DECIMAL(20,4), exact": (
        MONEY,
        pyarrow.array([Decimal("12.3400")], pyarrow.decimal128(20, 4)),
        Decimal("12.34"),
        None,
    ),
    "money as DECIMAL(20,4), inexact": (
        MONEY,
        pyarrow.array([Decimal("12.3456")], pyarrow.decimal128(20, 4)),
        None,
        "12.3456",
    ),
    "money as DECIMAL(38,12), a trillionth off": (
        MONEY,
        pyarrow.array([Decimal("1.000000000001")], pyarrow.decimal128(38, 12)),
        None,
        "1.000000000001",
    ),
    "money as DECIMAL(38,2), over 16 integer digits": (
        MONEY,
        pyarrow.array([Decimal("12345678901234567.00")], pyarrow.decimal128(38, 2)),
        None,
        "12345678901234567.00",
    ),
    "money as an integer": (MONEY, pyarrow.array([100], pyarrow.int32()), Decimal("100.00"), None),
}


@pytest.mark.parametrize("columns, values, loaded, shown", PARQUET_NUMBERS.values(), ids=PARQUET_NUMBERS.keys())
def test_a_parquet_number_loads_as_its_shortest_decimal_text_or_is_a_type_error_showing_it(
    tmp_path, columns, values, loaded, shown
):
    stem = "refunds" if columns == MONEY else "usage"
    result = load_one_parquet_row(tmp_path, stem, **{column: values for column in columns})
    if loaded is not None:
        assert errors(result, stem) == []
        assert result.con.execute(f"SELECT {columns[0]} FROM delivered_{stem}").fetchall() == [(loaded,)]
    else:
        assert result.con.execute(
            'SELECT line, "column", "check", value, message FROM quarantine WHERE source = ? ORDER BY "column"',
            [stem],
        ).fetchall() == [
            (1, column, "type", shown, f"{column} must be {KIND_WORDS[EXPORTS[stem].columns[column]]}, got '{shown}'")
            for column in sorted(columns)
        ]


NOON_UTC = 1772452800  # 2026-03-02 12:00:00 UTC, in seconds since the epoch
PARQUET_TIMESTAMPS = {  # (unit, zone, value in the unit) -> the instant in UTC
    ("s", "UTC", NOON_UTC): "2026-03-02 12:00:00",
    ("ms", "UTC", NOON_UTC * 10**3 + 250): "2026-03-02 12:00:00.25",
    ("us", "UTC", NOON_UTC * 10**6 + 123456): "2026-03-02 12:00:00.123456",
    ("ns", "UTC", NOON_UTC * 10**9 + 999_999_999): "2026-03-02 12:00:00.999999",  # cut, not rounded up
    ("ns", "Asia/Tokyo", NOON_UTC * 10**9): "2026-03-02 12:00:00",
    ("us", "America/New_York", NOON_UTC * 10**6): "2026-03-02 12:00:00",
    ("s", None, NOON_UTC): "2026-03-02 04:00:00",  # naive: billing time (UTC+8)
    ("ms", None, NOON_UTC * 10**3): "2026-03-02 04:00:00",
    ("us", None, NOON_UTC * 10**6): "2026-03-02 04:00:00",
    ("ns", None, NOON_UTC * 10**9 + 1): "2026-03-02 04:00:00",
    ("ns", None, -1): "1969-12-31 15:59:59.999999",  # before 1970 too: cut towards the past
}


@pytest.mark.parametrize("unit, zone, value", PARQUET_TIMESTAMPS, ids=[str(case) for case in PARQUET_TIMESTAMPS])
def test_a_parquet_timestamp_of_any_unit_and_zone_loads_as_its_instant(tmp_path, unit, zone, value):
    started_at = pyarrow.array([value], pyarrow.timestamp(unit, tz=zone))
    result = load_one_parquet_row(tmp_path, "usage", started_at=started_at, order_id=pyarrow.nulls(1, pyarrow.string()))
    assert errors(result, "usage") == []
    assert result.con.execute("SELECT timezone('UTC', started_at) FROM delivered_usage").fetchall() == [
        (datetime.fromisoformat(PARQUET_TIMESTAMPS[unit, zone, value]),)
    ]


@pytest.mark.parametrize(
    "text", ["infinity", "-infinity", "epoch", "2026-03-02 12:00:00 Asia/Tokyo", "PST", "2026-2-3 10:00", "2026-03-02"]
)
def test_a_parquet_text_timestamp_that_is_not_iso_8601_is_a_type_error(tmp_path, text):
    result = load_one_parquet_row(tmp_path, "usage", started_at=pyarrow.array([text]))
    assert errors(result, "usage") == [(1, "started_at", "type")]


ODD_TYPES = {
    "BLOB": pyarrow.array([b"U1"], pyarrow.binary()),
    "STRUCT": pyarrow.array([{"value": "U1"}]),
    "MAP": pyarrow.array([[("value", "U1")]], pyarrow.map_(pyarrow.string(), pyarrow.string())),
    "LIST": pyarrow.array([["U1"]]),
    "BOOLEAN": pyarrow.array([True]),
    "DATE": pyarrow.array([date(2026, 3, 2)]),
    "TIME": pyarrow.array([time(12, 0)]),
}


@pytest.mark.parametrize("column", ["usage_id", "minutes", "started_at"])
@pytest.mark.parametrize("odd_type", ODD_TYPES)
def test_a_parquet_column_of_a_type_that_cannot_hold_its_kind_is_a_type_error_on_each_row(tmp_path, odd_type, column):
    result = load_one_parquet_row(tmp_path, "usage", **{column: ODD_TYPES[odd_type]})
    assert errors(result, "usage") == [(1, column, "type")]
    assert result.files["usage"].rows_quarantined == 1


# --- CSV oddities that must not reject a whole file -------------------------------------------

ROW = "U{},O1,1400000001,2026-03-02 12:00:00,10,audio"
BARE_CR = {  # case: (the file after its header, the lines loaded, the line quarantined as csv_row)
    "a CR inside an unquoted field": (
        f"{ROW.format(1)}\nU2,O1,1400000001,2026-03-02 12:00:00,1\r0,audio\n{ROW.format(3)}\n",
        [2, 4],
        3,
    ),
    "a CR at an unquoted field's start": (
        f"{ROW.format(1)}\n\rU2,O1,1400000001,2026-03-02 12:00:00,10,audio\n{ROW.format(3)}\n",
        [2, 4],
        3,
    ),
    "a CR in a row with a quoted field": (
        f'{ROW.format(1)}\n"U2",O1,1400000001,2026-03-02 12:00:00,1\r0,audio\n{ROW.format(3)}\n',
        [2, 4],
        3,
    ),
    "a CR after a multi-line field": (
        f'"U1\nx",O1,1400000001,2026-03-02 12:00:00,10,audio\n'
        f"U2,O1,1400000001,2026-03-02 12:00:00,1\r0,audio\n{ROW.format(3)}\n",
        [2, 5],
        4,
    ),
    "a lone CR at the end of the file": (f"{ROW.format(1)}\n{ROW.format(2)}\n\r", [2, 3], 4),
    "a last row ended by a CR alone": (f"{ROW.format(1)}\n{ROW.format(2)}\r", [2], 3),
    "CRLF lines, a CR inside a field": (
        f"{ROW.format(1)}\r\nU2,O1,1400000001,2026-03-02 12:00:00,1\r0,audio\r\n{ROW.format(3)}\r\n",
        [2, 4],
        3,
    ),
    "CRLF lines, then a lone CR": (f"{ROW.format(1)}\r\n{ROW.format(2)}\r\n\r", [2, 3], 4),
}


@pytest.mark.parametrize("body, loaded, quarantined", BARE_CR.values(), ids=BARE_CR.keys())
def test_a_cr_outside_quotes_quarantines_its_row_and_the_rest_loads(tmp_path, body, loaded, quarantined):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    eol = "\r\n" if "\r\n" in body else "\n"
    (folder / "usage.csv").write_bytes((USAGE_HEADER + eol + body).encode())
    result = load_folder(folder)
    assert [line for line, _ in loaded_lines(result, "usage", "usage_id")] == loaded
    assert errors(result, "usage") == [(quarantined, None, "csv_row")]
    counts = result.files["usage"]
    assert (counts.rows_in, counts.rows_loaded, counts.rows_quarantined) == (len(loaded) + 1, len(loaded), 1)


def test_a_cr_inside_a_quoted_field_is_data(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    usage_csv(folder, '"U1\rx",O1,1400000001,2026-03-02 12:00:00,10,audio', ROW.format(2))
    result = load_folder(folder)
    assert loaded_lines(result, "usage", "usage_id") == [(2, "U1\rx"), (3, "U2")]


def _gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


BROKEN_GZIP = {
    "cut before its end marker": lambda data: _gzipped(data)[:-8],
    "cut in the middle": lambda data: _gzipped(data)[: len(_gzipped(data)) // 2],
    "a corrupt byte in its data": lambda data: (lambda z: z[:20] + bytes([z[20] ^ 0xFF]) + z[21:])(_gzipped(data)),
    "only its header": lambda data: _gzipped(data)[:10],
}


@pytest.mark.parametrize("break_it", BROKEN_GZIP.values(), ids=BROKEN_GZIP.keys())
def test_a_truncated_or_corrupt_csv_gz_is_one_structural_error_naming_it(tmp_path, break_it):
    folder = write_exports(
        tmp_path / "in", purchases=[purchase()], usage=[usage(usage_id=f"U{index}") for index in range(200)]
    )
    (folder / "usage.csv.gz").write_bytes(break_it((folder / "usage.csv").read_bytes()))
    (folder / "usage.csv").unlink()
    result = CliRunner().invoke(main, ["validate", "--input", str(folder), "--as-of", "2026-03-31"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = error_lines(result.stderr.strip())
    assert len(lines) == 1 and "usage.csv.gz" in lines[0], result.stderr


# --- the largest amounts through a whole night ------------------------------------------------

MAX_AMOUNT = "9999999999999999.99"  # the largest DECIMAL(18,2)


def test_a_night_of_the_largest_amounts_runs_publishes_and_sums_them_exactly(tmp_path):
    orders = [
        purchase(
            order_id=f"O{index}",
            account_id=f"A{index}",
            entity_id="E1",
            list_price=MAX_AMOUNT,
            paid_cash_credit=MAX_AMOUNT,
        )
        for index in range(1, 4)
    ]
    refunds = [
        refund(refund_id=f"R{index}", order_id=f"O{index}", refund_cash_credit=MAX_AMOUNT, refund_amount=MAX_AMOUNT)
        for index in range(1, 4)
    ]
    folder = write_exports(tmp_path / "in", purchases=orders, refunds=refunds, usage=[usage(order_id="O1")])
    db = tmp_path / "out" / "recon.duckdb"
    result = CliRunner().invoke(main, ["run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31"])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT CAST(sum(purchases_list_price) AS VARCHAR), CAST(sum(refunds_requested_amount) AS VARCHAR), "
            "CAST(sum(at_risk_total) AS VARCHAR) FROM daily_reconciliation"
        ).fetchone() == ("29999999999999999.97", "29999999999999999.97", "29999999999999999.97")
        assert con.execute("SELECT count(*) FROM refund_verdicts WHERE verdict = 'breach'").fetchone()[0] == 3
