"""Exports for other tools (Parquet by as_of, CSV, run_results.json) and `refund-recon query`.

Each test runs the job on a tiny explicit night (tests/exports.py) into a warehouse in
tmp_path; the exports land next to it. The tests that only read the default night share one
(`published`, and `two_nights` for two); a test that changes it works on a copy.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from exports import AS_OF, SPEC_RULE_CODES, purchase, refund, status, usage, write_exports

from jobs.cli import main
from jobs.config import Settings
from jobs.outputs import exports as exports_module
from jobs.outputs.exports import ExportError, csv_text
from jobs.pipeline import run
from jobs.stages.publish import PublishError

OUTPUT_TABLES = ("refund_flags", "refund_verdicts", "validation_errors", "abuse_signals", "abuse_cases")
SETTINGS = Settings(max_bad_row_fraction=1.0, write_report=False)
RULE_CODES = SPEC_RULE_CODES


def night(folder: Path, **overrides) -> Path:
    """One order and one refund of it, requested on day 9 (PAST_WINDOW), plus what the test adds."""
    tables = dict(
        purchases=[purchase()], refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")]
    )
    return write_exports(folder, **(tables | overrides))


def publish_night(tmp_path: Path, as_of: date = AS_OF, settings: Settings = SETTINGS, folder: Path | None = None):
    db_path = tmp_path / "out" / "recon.duckdb"
    result = run(settings, folder or night(tmp_path / f"in-{as_of}"), as_of, db_path)
    return db_path, result


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The default night published once, for the tests that only read it: (db_path, RunResult)."""
    return publish_night(tmp_path_factory.mktemp("published"))


@pytest.fixture
def published_copy(published, tmp_path):
    """A copy of `published` in tmp_path/out, for a test that publishes over it."""
    db_path, result = published
    shutil.copytree(db_path.parent, tmp_path / "out")
    return tmp_path / "out" / "recon.duckdb", result


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory) -> Path:
    """The default night published as of 2026-03-30, then as of 2026-03-31: the warehouse's path."""
    folder = tmp_path_factory.mktemp("two-nights")
    publish_night(folder, as_of=date(2026, 3, 30))
    return publish_night(folder, as_of=AS_OF)[0]


def exported_tables(db_path: Path) -> list[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        present = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return [table for table in exports_module.EXPORT_TABLES + exports_module.OPTIONAL_EXPORT_TABLES if table in present]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def hidden_entries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(".*")]


# --- layout -----------------------------------------------------------------------------------


def test_a_run_writes_parquet_partitions_csv_and_run_results_next_to_the_warehouse(published):
    db_path, result = published
    out = db_path.parent
    tables = exported_tables(db_path)
    assert set(OUTPUT_TABLES) <= set(tables)
    parquet = [
        out / "exports" / "parquet" / table / "as_of=2026-03-31" / "data.parquet"
        for table in (*tables, *exports_module.REPORT_TABLES)
    ]
    csv_files = [out / "exports" / "csv" / "as_of=2026-03-31" / f"{table}.csv" for table in tables]
    workbook = out / "exports" / "xlsx" / "refund-recon-2026-03-31.xlsx"
    assert result.export_paths == parquet + csv_files + [workbook, out / "run_results.json"]
    assert all(path.is_file() for path in result.export_paths)
    assert sorted(path.name for path in (out / "exports" / "csv" / "as_of=2026-03-31").iterdir()) == sorted(
        f"{table}.csv" for table in tables
    )
    assert hidden_entries(out / "exports") == []


def test_parquet_keeps_the_table_but_puts_as_of_in_the_folder_name(published):
    db_path, _ = published
    folder = db_path.parent / "exports" / "parquet"
    with duckdb.connect(str(db_path), read_only=True) as con:
        for table in exported_tables(db_path):
            file = folder / table / "as_of=2026-03-31" / "data.parquet"
            columns = [
                row[0]
                for row in con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet('{file}', hive_partitioning = false)"
                ).fetchall()
            ]
            assert "as_of" not in columns  # Hive style: the partition column lives in the path
            expected = con.execute(f"SELECT * EXCLUDE (as_of) FROM {table}").fetchall()
            assert (
                con.execute(f"SELECT * FROM read_parquet('{file}', hive_partitioning = false)").fetchall() == expected
            ), table
            read_back = con.execute(
                f"SELECT DISTINCT as_of FROM read_parquet('{folder / table}/*/*.parquet', hive_partitioning = true)"
            ).fetchall()
            assert read_back in ([(AS_OF,)], []), table


def test_two_nights_give_two_partitions_read_back_together(two_nights):
    db_path = two_nights
    folder = db_path.parent / "exports" / "parquet" / "refund_flags"
    assert sorted(path.name for path in folder.iterdir()) == ["as_of=2026-03-30", "as_of=2026-03-31"]
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT as_of, count(*), count(DISTINCT run_id) FROM read_parquet('{folder}/*/*.parquet', "
            f"hive_partitioning = true) GROUP BY as_of ORDER BY as_of"
        ).fetchall()
    assert rows == [(date(2026, 3, 30), 1, 1), (AS_OF, 1, 1)]
    csv_nights = sorted(path.name for path in (db_path.parent / "exports" / "csv").iterdir())
    assert csv_nights == ["as_of=2026-03-30", "as_of=2026-03-31"]


def test_pyarrow_reads_the_partitions_as_a_hive_dataset(two_nights):
    pyarrow_dataset = pytest.importorskip("pyarrow.dataset")
    db_path = two_nights
    table = pyarrow_dataset.dataset(
        db_path.parent / "exports" / "parquet" / "refund_verdicts", partitioning="hive"
    ).to_table()
    assert table.num_rows == 2
    assert sorted(str(value) for value in table.column("as_of").to_pylist()) == ["2026-03-30", "2026-03-31"]


def test_rerunning_a_night_replaces_its_partition(published_copy, tmp_path):
    db_path, first = published_copy
    quiet = write_exports(tmp_path / "quiet", purchases=[purchase()], refunds=[])
    _, second = publish_night(tmp_path, folder=quiet)
    out = db_path.parent / "exports"
    flags = out / "parquet" / "refund_flags" / "as_of=2026-03-31"
    assert [path.name for path in flags.iterdir()] == ["data.parquet"]
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM read_parquet('{flags}/data.parquet')").fetchone() == (0,)
        verdict_runs = con.execute(
            f"SELECT DISTINCT run_id FROM read_parquet('{out}/parquet/refund_verdicts/*/*.parquet')"
        ).fetchall()
    assert verdict_runs == []  # no refund tonight, and nothing left of the first run
    assert read_csv(out / "csv" / "as_of=2026-03-31" / "refund_flags.csv") == []
    runs = {row["run_id"] for row in read_csv(out / "csv" / "as_of=2026-03-31" / "validation_errors.csv")}
    assert first.run_id not in runs
    assert json.loads((db_path.parent / "run_results.json").read_text())["run_id"] == second.run_id
    assert hidden_entries(out) == []


def test_an_export_failing_midway_leaves_last_nights_partition_whole(published_copy, tmp_path, monkeypatch):
    db_path, first = published_copy
    out = db_path.parent / "exports"
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    results_before = (db_path.parent / "run_results.json").read_bytes()
    written = []

    def failing_write(con, table, path, scrubber):
        if written:
            raise OSError(28, "No space left on device")
        written.append(table)
        path.write_text("half", encoding="utf-8")

    monkeypatch.setattr(exports_module, "_write_csv", failing_write)
    with pytest.raises(ExportError, match="No space left on device") as caught:
        publish_night(tmp_path)
    assert isinstance(caught.value, PublishError)  # the command line reports it, exit code 1
    csv_night = out / "csv" / "as_of=2026-03-31"
    assert {path: path.read_bytes() for path in csv_night.iterdir()} == {
        path: data for path, data in before.items() if path.parent == csv_night
    }
    assert (db_path.parent / "run_results.json").read_bytes() == results_before
    assert json.loads(results_before)["run_id"] == first.run_id
    assert hidden_entries(out) == []


def test_the_workbook_failing_on_its_thread_fails_the_exports_and_keeps_last_nights(
    published_copy, tmp_path, monkeypatch
):
    db_path, _ = published_copy
    out = db_path.parent / "exports"
    before = {path: path.read_bytes() for path in out.rglob("*.xlsx")}
    results_before = (db_path.parent / "run_results.json").read_bytes()

    def failing_workbook(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exports_module.workbook, "write_workbook", failing_workbook)
    with pytest.raises(ExportError, match="No space left on device"):
        publish_night(tmp_path)
    assert before and {path: path.read_bytes() for path in out.rglob("*.xlsx")} == before
    assert (db_path.parent / "run_results.json").read_bytes() == results_before
    assert hidden_entries(out) == []


def test_exports_can_be_switched_off(tmp_path):
    db_path, result = publish_night(tmp_path, settings=replace(SETTINGS, write_exports=False))
    assert result.export_paths == []
    assert not (db_path.parent / "exports").exists()
    assert not (db_path.parent / "run_results.json").exists()


# --- CSV --------------------------------------------------------------------------------------


def test_csv_is_utf8_with_a_header_iso_dates_lists_and_exact_amounts(tmp_path):
    folder = write_exports(
        tmp_path / "in",
        purchases=[purchase(entity_id="实体-E1")],
        usage=[usage(started_at="2026-03-02 12:00:00")],
        refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")],
    )
    db_path, _ = publish_night(tmp_path, folder=folder)
    night_folder = db_path.parent / "exports" / "csv" / "as_of=2026-03-31"
    raw = (night_folder / "refund_verdicts.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8").splitlines()[0].split(",")[:4] == ["run_id", "as_of", "refund_id", "verdict"]
    [verdict] = read_csv(night_folder / "refund_verdicts.csv")
    assert verdict["as_of"] == "2026-03-31"
    assert verdict["entity_id"] == "实体-E1"
    assert verdict["rule_codes"] == "PAST_WINDOW; MINUTES_USED"
    assert verdict["amount_at_risk"] == "100.00"
    flags = read_csv(night_folder / "refund_flags.csv")
    assert [flag["rule_code"] for flag in flags] == ["PAST_WINDOW", "MINUTES_USED"]
    assert json.loads(flags[1]["evidence"])["minutes_used"] == 10


def test_csv_cells_render_times_in_utc_iso_8601_and_structs_as_json():
    shanghai = timezone(timedelta(hours=8))
    assert csv_text(datetime(2026, 3, 2, 10, 0, tzinfo=shanghai)) == "2026-03-02T02:00:00+00:00"
    assert csv_text(date(2026, 3, 2)) == "2026-03-02"
    assert csv_text(["a", "b"]) == "a; b"
    assert csv_text([]) == ""
    assert csv_text(None) == ""
    assert csv_text(True) == "true"
    assert csv_text(Decimal("1999.00")) == "1999.00"
    assert csv_text([{"currency": "CNY", "amount": Decimal("1999.00")}]) == '{"currency":"CNY","amount":1999.00}'


def test_csv_cells_a_spreadsheet_would_evaluate_get_a_leading_quote(tmp_path):
    evil = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    purchases = [
        purchase(order_id=f"O{n}", account_id=f"A{n}", entity_id=value, purchased_at="2026-03-01 10:00:00")
        for n, value in enumerate(evil, start=1)
    ]
    refunds = [
        refund(
            refund_id=f"R{n}", order_id=f"O{n}", requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00"
        )
        for n in range(1, len(evil) + 1)
    ]
    bad_usage = [usage(usage_id="U9", minutes="-12.5")]  # quarantined: its value '-12.5' is text
    db_path, _ = publish_night(
        tmp_path, folder=write_exports(tmp_path / "in", purchases=purchases, refunds=refunds, usage=bad_usage)
    )
    night_folder = db_path.parent / "exports" / "csv" / "as_of=2026-03-31"
    verdicts = {row["refund_id"]: row for row in read_csv(night_folder / "refund_verdicts.csv")}
    assert [verdicts[f"R{n}"]["entity_id"] for n in range(1, len(evil) + 1)] == ["'" + value for value in evil]
    assert all(row["amount_at_risk"] == "100.00" for row in verdicts.values())  # numbers stay numbers
    [error] = read_csv(night_folder / "validation_errors.csv")
    assert error["value"] == "'-12.500000"
    for path in night_folder.iterdir():
        for row in read_csv(path):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values()), path.name


# --- privacy ----------------------------------------------------------------------------------

FINGERPRINT = "fp_secret_0123456789"
HIDDEN_FINGERPRINT = "fp_only_in_a_broken_row_42"


def privacy_night(folder: Path) -> Path:
    """Identifiers in every place a CSV can carry them: R1's ACCOUNT_SUSPENDED evidence names its
    account, R2's CONCURRENT_REFUND evidence the entity and the earlier account, O3 (the account
    claimed by a second entity) a validation message naming both, and a purchases row that cannot
    be split (line 5) carries identifiers and a fingerprint seen nowhere else."""
    purchases = [
        purchase(order_id="O1", account_id="100023456781", entity_id="ENT0010231", payment_fingerprint=FINGERPRINT),
        purchase(order_id="O2", account_id="100023456782", entity_id="ENT0010231", purchased_at="2026-03-02 10:00:00"),
        purchase(order_id="O3", account_id="100023456781", entity_id="ENT0099999", purchased_at="2026-03-03 10:00:00"),
    ]
    refunds = [
        refund(refund_id="R1", order_id="O1", requested_at="2026-03-02 12:00:00", processed_at="2026-03-03 12:00:00"),
        refund(refund_id="R2", order_id="O2", requested_at="2026-03-03 12:00:00", processed_at="2026-03-04 12:00:00"),
    ]
    folder = write_exports(
        folder,
        purchases=purchases,
        refunds=refunds,
        account_status=[status(account_id="100023456781", effective_at="2026-03-02 09:00:00")],
    )
    with (folder / "purchases.csv").open("a", encoding="utf-8") as stream:
        stream.write(
            f"O4,100077777777,ENT0077777,1400000001,call,package,standard,1000,2026-03-01 10:00:00,USD,"
            f"100.00,0.00,0.00,100.00,0.00,0.00,{HIDDEN_FINGERPRINT},one field too many\r\n"
        )
    return folder


def all_csv_text(db_path: Path) -> str:
    folder = db_path.parent / "exports" / "csv" / "as_of=2026-03-31"
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.iterdir()))


def test_masked_csv_shows_identifiers_by_first_three_and_last_two_characters(tmp_path):
    settings = replace(SETTINGS, mask_csv_exports=True)
    db_path, _ = publish_night(tmp_path, settings=settings, folder=privacy_night(tmp_path / "in"))
    text = all_csv_text(db_path)
    for identifier in ("100023456781", "100023456782", "ENT0010231", "ENT0099999", "100077777777", "ENT0077777"):
        assert identifier not in text, identifier
    night_folder = db_path.parent / "exports" / "csv" / "as_of=2026-03-31"
    flags = {(row["refund_id"], row["rule_code"]): row for row in read_csv(night_folder / "refund_flags.csv")}
    suspended = flags[("R1", "ACCOUNT_SUSPENDED")]
    assert (suspended["account_id"], suspended["entity_id"]) == ("100…81", "ENT…31")
    assert json.loads(suspended["evidence"])["account_id"] == "100…81"
    concurrent = json.loads(flags[("R2", "CONCURRENT_REFUND")]["evidence"])
    assert (concurrent["entity_id"], concurrent["earlier_account_id"]) == ("ENT…31", "100…81")
    conflict = [
        row for row in read_csv(night_folder / "validation_errors.csv") if row["check"] == "account_entity_conflict"
    ]
    assert conflict and conflict[0]["value"] == "ENT…99"
    assert "100…81" in conflict[0]["message"] and "ENT…31" in conflict[0]["message"]
    # The warehouse and the Parquet files keep identifiers as given.
    with duckdb.connect() as con:
        accounts = con.execute(
            f"SELECT DISTINCT account_id FROM read_parquet('{db_path.parent}/exports/parquet/refund_flags/*/*.parquet')"
        ).fetchall()
    assert ("100023456781",) in accounts


def test_unmasked_csv_keeps_identifiers_but_never_prints_a_fingerprint_in_full(tmp_path):
    db_path, _ = publish_night(tmp_path, folder=privacy_night(tmp_path / "in"))
    text = all_csv_text(db_path)
    assert "100023456781" in text and "ENT0010231" in text
    assert FINGERPRINT not in text
    assert HIDDEN_FINGERPRINT not in text
    night_folder = db_path.parent / "exports" / "csv" / "as_of=2026-03-31"
    [broken] = [row for row in read_csv(night_folder / "validation_errors.csv") if row["check"] == "csv_row"]
    assert broken["source"] == "purchases" and broken["line"] == "5"
    assert "…" in broken["value"]


EDGE_TEXTS = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(B2)",
    "\tTAB",
    "\rCR",
    "'quote",
    "a,b",
    'say "hi"',
    "two\nlines",
    "cr\r\nlf",
    "#hash",
    "",
    None,
    "实体-E1",
    " lead ",
    "G-ENT0010231, card fp_abcdef123456",
    "XENT0010231 A12 A1",
    "ENT 0010873 and 企业0011342",
    "paid by A#1",
]
KNOWN = {
    "account_id": ["A1", "A#1", "100023456781"],
    "entity_id": ["ENT0010231", "实体-E1", "ENT 0010873", "企业0011342"],
    "payment_fingerprint": ["fp_abcdef123456", "fp-with-dash"],
}


def edge_table(con) -> None:
    """validation_errors with a cell of every kind: formula starts, quoting, numbers, times, lists, structs;
    purchases holding the known ids."""
    con.execute(
        "CREATE TABLE purchases AS SELECT unnest(?) AS account_id, unnest(?) AS entity_id, "
        "unnest(?) AS payment_fingerprint",
        [KNOWN["account_id"], KNOWN["entity_id"], KNOWN["payment_fingerprint"]],
    )
    con.execute("""CREATE TABLE validation_errors (source VARCHAR, "column" VARCHAR, "check" VARCHAR, value VARCHAR,
                   entity_id VARCHAR, entity_ids VARCHAR[], notes VARCHAR[], line BIGINT, amount DECIMAL(18,2),
                   score DOUBLE, passed BOOLEAN, day DATE, moment TIMESTAMPTZ, lines BIGINT[],
                   parts STRUCT(currency VARCHAR, amount DECIMAL(38,2))[])""")
    rows = [
        (
            "usage",
            "minutes",
            "type",
            text,
            text,
            [text, None],
            [text, "-x"],
            -3,
            Decimal("-5.00"),
            0.1,
            True,
            date(2026, 3, 2),
            datetime(2026, 3, 2, 10, 0, 0, 5, tzinfo=UTC),
            [-1, None],
            [{"currency": text, "amount": Decimal("1999.00")}, None],
        )
        for text in EDGE_TEXTS
    ]
    rows += [
        (
            "purchases",
            "payment_fingerprint",
            "type",
            "fp_abcdef123456",
            None,
            [],
            None,
            None,
            None,
            1e16,
            None,
            None,
            datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
            None,
            None,
        ),
        (
            "purchases",
            None,
            "csv_row",
            "=O4,ENT0010231,fp_abcdef123456",
            None,
            None,
            None,
            5,
            None,
            float("inf"),
            False,
            None,
            None,
            None,
            [{"currency": '\x01\x1f\\"\b\f', "amount": None}],
        ),
        (
            "account_status",
            None,
            "csv_row",
            "A1,suspended",
            None,
            None,
            None,
            6,
            None,
            2.5e-7,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            "purchases",
            "entity_id",
            "account_entity_conflict",
            "ENT0010231",
            None,
            None,
            None,
            7,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    con.executemany(f"INSERT INTO validation_errors VALUES ({', '.join(['?'] * 15)})", rows)


# (column, its type, a value as SQL, ids masked?, the cell as written: CSV quoting included)
CSV_CELLS = [
    ("value", "VARCHAR", "'=1+1'", False, "'=1+1"),  # a formula start gets a quote
    ("value", "VARCHAR", "'+1'", False, "'+1"),
    ("value", "VARCHAR", "'-1'", False, "'-1"),
    ("value", "VARCHAR", "'@SUM(B2)'", False, "'@SUM(B2)"),
    ("value", "VARCHAR", "chr(9) || 'TAB'", False, "'\tTAB"),
    ("value", "VARCHAR", "chr(13) || 'CR'", False, '"\'\rCR"'),
    ("value", "VARCHAR", "'''quote'", False, "'quote"),
    ("value", "VARCHAR", "'a,b'", False, '"a,b"'),  # quoted only when it must be
    ("value", "VARCHAR", "'say \"hi\"'", False, '"say ""hi"""'),
    ("value", "VARCHAR", "'two' || chr(10) || 'lines'", False, '"two\nlines"'),
    ("value", "VARCHAR", "'#hash'", False, "#hash"),
    ("value", "VARCHAR", "''", False, ""),
    ("value", "VARCHAR", "NULL", False, ""),
    ("value", "VARCHAR", "' lead '", False, " lead "),
    ("value", "VARCHAR", "'实体-E1 paid'", False, "实体-E1 paid"),  # ids as given ...
    ("value", "VARCHAR", "'实体-E1 paid'", True, "实… paid"),  # ... or masked
    ("value", "VARCHAR", "'G-ENT0010231, card fp_abcdef123456'", False, '"G-ENT0010231, card fp_…56"'),
    ("value", "VARCHAR", "'G-ENT0010231, card fp_abcdef123456'", True, '"G-ENT…31, card fp_…56"'),
    ("value", "VARCHAR", "'XENT0010231 A12 A1'", True, "XENT0010231 A12 …"),  # not inside a longer word
    ("value", "VARCHAR", "'ENT 0010873 and 企业0011342'", True, "ENT…73 and 企…"),
    ("value", "VARCHAR", "'paid by A#1'", True, "paid by …"),
    ("entity_id", "VARCHAR", "'ENT0010231'", False, "ENT0010231"),
    ("entity_id", "VARCHAR", "'ENT0010231'", True, "ENT…31"),
    ("account_id", "VARCHAR", "'A1'", True, "…"),
    ("entity_ids", "VARCHAR[]", "['ENT0010231', NULL, '-x']", True, "ENT…31; ; …"),
    ("notes", "VARCHAR[]", "['-x', 'fp-with-dash']", False, "'-x; fp-…sh"),
    ("line", "BIGINT", "-3", False, "-3"),  # numbers stay numbers
    ("lines", "BIGINT[]", "[-1, NULL]", False, "'-1; "),  # a list is text
    ("amount", "DECIMAL(18,2)", "-5.00", False, "-5.00"),
    ("score", "DOUBLE", "0.1", False, "0.1"),
    ("score", "DOUBLE", "1e16", False, "1e+16"),
    ("score", "DOUBLE", "2.5e-7", False, "2.5e-07"),
    ("score", "DOUBLE", "'inf'", False, "inf"),
    ("score", "FLOAT", "0.1", False, "0.10000000149011612"),
    ("passed", "BOOLEAN", "false", False, "false"),
    ("day", "DATE", "DATE '2026-03-02'", False, "2026-03-02"),
    ("moment", "TIMESTAMPTZ", "TIMESTAMPTZ '2026-03-02 18:00:00.000005+08'", False, "2026-03-02T10:00:00.000005+00:00"),
    ("moment", "TIMESTAMPTZ", "TIMESTAMPTZ '2026-03-02 10:00:00+00'", False, "2026-03-02T10:00:00+00:00"),
    (
        "parts",
        "STRUCT(currency VARCHAR, amount DECIMAL(38,2))[]",
        "[{'currency': 'CNY', 'amount': 1999.00}, NULL]",
        False,
        '"{""currency"":""CNY"",""amount"":1999.00}; "',
    ),
    (
        "parts",
        "STRUCT(currency VARCHAR, amount DECIMAL(38,2))[]",
        "[{'currency': chr(1) || chr(31) || '\\\"' || chr(8) || chr(12), 'amount': NULL}]",
        False,
        '"{""currency"":""\\u0001\\u001f\\\\\\""\\b\\f"",""amount"":null}"',
    ),
    (
        "evidence",
        "STRUCT(ids VARCHAR[], score DOUBLE, day DATE)",
        "{'ids': ['A1', '=x'], 'score': 'nan', 'day': DATE '2026-03-02'}",
        True,
        '"{""ids"":[""…"",""=x""],""score"":NaN,""day"":""2026-03-02""}"',
    ),
]


@pytest.fixture(scope="module")
def cell_warehouse():
    """A warehouse knowing the ids of KNOWN."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        edge_table(con)
        yield con


@pytest.mark.parametrize("column, sql_type, value, mask_identifiers, cell", CSV_CELLS)
def test_a_csv_cell_is_written_as(cell_warehouse, tmp_path, column, sql_type, value, mask_identifiers, cell):
    """The one CSV writer (DuckDB's COPY of the cells exports.py renders in SQL), cell by cell."""
    con = cell_warehouse
    exports_module._install_csv_macros(con, mask_identifiers)
    con.execute(f'CREATE OR REPLACE TABLE cells ("{column}" {sql_type})')
    con.execute(f"INSERT INTO cells VALUES ({value})")
    exports_module._write_csv(con, "cells", tmp_path / "cells.csv", mask_identifiers)
    assert (tmp_path / "cells.csv").read_bytes().decode("utf-8") == f"{column}\r\n{cell}\r\n"


@pytest.mark.parametrize("mask_identifiers", [False, True])
def test_csv_written_by_duckdb_masks_and_neutralises_every_cell_as_the_one_rule_says(tmp_path, mask_identifiers):
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        edge_table(con)
        exports_module._install_csv_macros(con, mask_identifiers)
        exports_module._write_csv(con, "validation_errors", tmp_path / "sql.csv", mask_identifiers)
    written = (tmp_path / "sql.csv").read_bytes()
    rows = read_csv(tmp_path / "sql.csv")
    assert [row["value"] for row in rows[:6]] == ["'" + text for text in EDGE_TEXTS[:6]]
    text = written.decode("utf-8")
    hidden = KNOWN["payment_fingerprint"] + (KNOWN["account_id"] + KNOWN["entity_id"] if mask_identifiers else [])
    standalone = [
        identifier
        for identifier in hidden  # XENT0010231 is another word, not ENT0010231
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(identifier)}(?![A-Za-z0-9_])", text)
    ]
    assert standalone == []
    assert "=O4,ENT0010231,fp_abcdef123456" not in text  # a purchases row that could not be split: masked whole


# --- run_results.json -------------------------------------------------------------------------


def test_run_results_tell_a_scheduler_what_the_run_did(published):
    db_path, result = published
    document = json.loads((db_path.parent / "run_results.json").read_text(encoding="utf-8"))
    assert document["metadata"]["schema"] == "refund-recon/run-results/v1"
    assert (document["run_id"], document["as_of"]) == (result.run_id, "2026-03-31")
    assert datetime.fromisoformat(document["started_at"]) <= datetime.fromisoformat(document["finished_at"])
    for source, counts in result.files.items():
        entry = document["files"][source]
        assert (entry["rows_in"], entry["rows_loaded"], entry["rows_quarantined"], entry["rows_after_as_of"]) == (
            counts.rows_in,
            counts.rows_loaded,
            counts.rows_quarantined,
            counts.rows_after_as_of,
        )
        assert len(entry["sha256"]) == 64
    assert document["flags_per_rule"] == {code: int(code == "PAST_WINDOW") for code in RULE_CODES}
    assert document["totals"]["flag_count"] == 1
    assert document["verdicts"] == [
        {"verdict": "breach", "currency": "USD", "refunds": 1, "amount_at_risk": 100, "refund_amount": 100}
    ]
    assert {"load", "validate", "rules", "publish", "exports"} <= set(document["stage_seconds"])
    assert all(seconds >= 0 for seconds in document["stage_seconds"].values())
    assert {"load", "validate", "rules", "publish"} <= set(document["stage_peak_rss_bytes"])
    assert all(peak > 10_000_000 for peak in document["stage_peak_rss_bytes"].values())  # a Python + DuckDB process
    invariants = document["invariants"]
    if "invariant_results" in exported_tables(db_path):
        assert invariants["total"] > 0 and invariants["failed"] == 0
        assert invariants["passed"] == invariants["total"] == len(invariants["results"])
    else:
        assert invariants is None
    paths = document["outputs"]["paths"]
    assert paths[-1] == "run_results.json"
    assert [Path(document["outputs"]["base_dir"]) / path for path in paths] == [
        path.resolve() for path in result.export_paths
    ]


FRESH = dict(
    purchases=[purchase(purchased_at="2026-03-31 10:00:00")],
    usage=[usage(started_at="2026-03-31 11:00:00")],
    refunds=[refund(requested_at="2026-03-31 12:00:00", status="pending", processed_at="")],
)


@pytest.mark.parametrize(
    "exports, quarantined, warnings, status",
    [
        # the night's records are old: the freshness gates of purchases, usage and refunds fail
        (
            {},
            0,
            [("gate", "freshness", "purchases"), ("gate", "freshness", "refunds"), ("gate", "freshness", "usage")],
            "succeeded_with_warnings",
        ),
        (FRESH, 0, [], "succeeded"),
        (
            FRESH | {"refunds": [*FRESH["refunds"], refund(refund_id="R2", refund_amount="oops")]},
            1,
            [("quarantine", None, "refunds")],
            "succeeded_with_warnings",
        ),
    ],
)
def test_run_results_say_succeeded_with_warnings_for_a_scheduler(tmp_path, exports, quarantined, warnings, status):
    db_path, _ = publish_night(tmp_path, folder=night(tmp_path / "in", **exports))
    document = json.loads((db_path.parent / "run_results.json").read_text(encoding="utf-8"))
    assert document["totals"]["rows_quarantined"] == quarantined
    assert document["status"] == status
    assert [(warning["kind"], warning.get("gate"), warning["source"]) for warning in document["warnings"]] == warnings
    assert all(warning["message"] for warning in document["warnings"])


def test_gate_results_are_exported_like_the_other_tables(published):
    db_path, _ = published
    rows = read_csv(db_path.parent / "exports" / "csv" / "as_of=2026-03-31" / "gate_results.csv")
    assert {(row["gate"], row["source"]) for row in rows} >= {("freshness", "refunds"), ("volume", "refunds")}
    assert {row["passed"] for row in rows if row["gate"] == "freshness" and row["source"] == "refunds"} == {"false"}
    assert (db_path.parent / "exports" / "parquet" / "gate_results" / "as_of=2026-03-31" / "data.parquet").is_file()


# --- refund-recon query -----------------------------------------------------------------------


def query(db_path: Path, *args):
    return CliRunner().invoke(main, ["query", *args, "--db", str(db_path)])


@pytest.fixture
def warehouse(published, tmp_path):
    """A copy of the published warehouse (one test holds it for writing)."""
    return Path(shutil.copy(published[0], tmp_path / "recon.duckdb"))


def test_query_prints_a_table(warehouse):
    outcome = query(warehouse, "SELECT refund_id, verdict, amount_at_risk FROM refund_verdicts")
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.splitlines()
    assert lines[0].split() == ["refund_id", "|", "verdict", "|", "amount_at_risk"]
    assert lines[2].split() == ["R1", "|", "breach", "|", "100.00"]
    assert lines[-1] == "(1 row)"


def test_query_prints_csv_and_json(warehouse):
    sql = "SELECT refund_id, rule_codes, amount_at_risk, as_of FROM refund_verdicts"
    as_csv = query(warehouse, sql, "--format", "csv")
    assert as_csv.exit_code == 0
    assert list(csv.reader(as_csv.stdout.splitlines())) == [
        ["refund_id", "rule_codes", "amount_at_risk", "as_of"],
        ["R1", "PAST_WINDOW", "100.00", "2026-03-31"],
    ]
    as_json = query(warehouse, sql, "--format", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == [
        {"refund_id": "R1", "rule_codes": ["PAST_WINDOW"], "amount_at_risk": 100, "as_of": "2026-03-31"}
    ]


def test_query_sees_times_in_billing_time(warehouse):
    outcome = query(
        warehouse, "SELECT requested_at, CAST(requested_at AS DATE) AS day FROM refunds", "--format", "json"
    )
    assert json.loads(outcome.stdout) == [{"requested_at": "2026-03-09T10:00:00+08:00", "day": "2026-03-09"}]


def test_query_never_writes(warehouse):
    for statement in ("DELETE FROM refund_flags", "DROP TABLE runs", "CREATE TABLE x AS SELECT 1"):
        outcome = query(warehouse, statement)
        assert outcome.exit_code == 1
        assert "read-only" in outcome.stderr and outcome.stderr.startswith("refund-recon: query failed")
        assert "Traceback" not in outcome.output
    assert (
        query(warehouse, "SELECT count(*) AS n FROM refund_flags", "--format", "json").stdout.strip()
        == '[\n  {\n    "n": 1\n  }\n]'
    )


def test_query_reports_a_bad_statement_and_a_missing_warehouse(warehouse, tmp_path):
    outcome = query(warehouse, "SELECT nope FROM refund_flags")
    assert outcome.exit_code == 1 and "query failed" in outcome.stderr
    missing = query(tmp_path / "nowhere.duckdb", "SELECT 1")
    assert missing.exit_code == 1 and "no warehouse there" in missing.stderr
    assert not (tmp_path / "nowhere.duckdb").exists()


def test_query_says_so_while_a_run_holds_the_warehouse(warehouse):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(warehouse)!r})\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        outcome = query(warehouse, "SELECT 1")
        assert outcome.exit_code == 1
        assert "a run is writing the warehouse" in outcome.stderr
        assert "exports" in outcome.stderr and "parquet" in outcome.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_query_reads_sql_from_stdin(warehouse):
    outcome = CliRunner().invoke(
        main,
        ["query", "-", "--db", str(warehouse), "--format", "csv"],
        input="SELECT count(*) AS flags FROM refund_flags;\n",
    )
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines() == ["flags", "1"]
