"""The synthetic night generator (`refund-recon generate`, docs/generator.md): deterministic
per seed, sized by the scale factor, and a night the job loads in which every rule and
signal fires with the default settings while a few planted bad rows are quarantined."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from exports import SPEC_RULE_CODES

from jobs.cli import main
from jobs.config import Settings
from jobs.pipeline import run
from jobs.stages.schemas import EXPORTS, SQL_TYPES
from jobs.tools.generate import generate

AS_OF = date(2026, 3, 31)
SMALL = 0.002  # the smallest scale the tests use: ~20 background entities, 10,000 usage rows
SEED = 11
STEMS = ("purchases", "usage", "refunds", "account_status")
RULE_CODES = set(SPEC_RULE_CODES)
SIGNAL_CODES = {  # SPEC section 5 and the three extras of docs/signals.md
    "SERIAL_REFUNDER",
    "REFUND_CYCLE",
    "PROMO_REFUNDS",
    "REFUND_BEFORE_SUSPENSION",
    "LINKED_ENTITIES",
    "LINKED_TO_SUSPENDED",
    "USAGE_SHIFT",
    "REFUND_VELOCITY",
}
QUIET = replace(Settings(), write_report=False, write_exports=False)


def digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def csv_night(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    generate(folder, SMALL, SEED)
    return folder


@pytest.fixture(scope="module")
def parquet_night(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parquet")
    generate(folder, SMALL, SEED, "parquet")
    return folder


def judged(folder: Path, tmp_path_factory):
    """The job's run on a generated night, published to a fresh warehouse."""
    return run(QUIET, folder, AS_OF, tmp_path_factory.mktemp("db") / "recon.duckdb")


@pytest.fixture(scope="module")
def csv_run(csv_night, tmp_path_factory):
    return judged(csv_night, tmp_path_factory)


@pytest.fixture(scope="module")
def parquet_run(parquet_night, tmp_path_factory):
    return judged(parquet_night, tmp_path_factory)


def test_the_same_seed_writes_byte_identical_files(csv_night, tmp_path):
    generate(tmp_path, SMALL, SEED)
    assert digests(tmp_path) == digests(csv_night)


def test_another_seed_writes_different_files(csv_night, tmp_path):
    generate(tmp_path, SMALL, SEED + 1)
    other, first = digests(tmp_path), digests(csv_night)
    assert all(other[name] != first[name] for name in first)


def test_row_counts_follow_the_scale_factor(tmp_path):
    # Issue #5: scale 1 is ~10,000 entities, 50,000 purchases, 20,000 refunds, 5,000,000 usage rows.
    # Small scales add a fixed minimum of planted stories, so the check is at 0.1.
    rows = generate(tmp_path, 0.1, SEED, "parquet")
    entities = duckdb.execute(
        "SELECT count(DISTINCT entity_id) FROM read_parquet(?)", [str(tmp_path / "purchases.parquet")]
    ).fetchall()[0][0]
    assert 900 <= entities <= 1100
    assert 4_500 <= rows["purchases"] <= 5_500
    assert 1_800 <= rows["refunds"] <= 2_200
    assert 490_000 <= rows["usage"] <= 510_000


def test_the_files_have_the_spec_columns_in_order(csv_night):
    for stem in STEMS:
        with (csv_night / f"{stem}.csv").open(newline="") as file:
            assert next(csv.reader(file)) == list(EXPORTS[stem].columns)


def test_parquet_columns_have_the_spec_types(parquet_night):
    for stem in STEMS:
        described = duckdb.execute(
            "DESCRIBE SELECT * FROM read_parquet(?)", [str(parquet_night / f"{stem}.parquet")]
        ).fetchall()
        expected = {
            name: SQL_TYPES[kind].replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
            for name, kind in EXPORTS[stem].columns.items()
        }
        assert {name: kind for name, kind, *_ in described} == expected


def test_every_row_is_loaded_or_quarantined(csv_run):
    for counts in csv_run.files.values():
        assert counts.rows_read == counts.rows_after_as_of + counts.rows_in
        assert counts.rows_in == counts.rows_loaded + counts.rows_quarantined
    assert all(counts.rows_after_as_of > 0 for name, counts in csv_run.files.items() if name != "account_status")


def test_exactly_the_planted_bad_usage_rows_are_quarantined(csv_night, csv_run):
    # Bad usage rows are the ones whose id starts with X (docs/generator.md).
    with (csv_night / "usage.csv").open(newline="") as file:
        planted = sum(row["usage_id"].startswith("X") for row in csv.DictReader(file))
    assert planted > 0
    assert csv_run.files["usage"].rows_quarantined == planted
    checks = {
        check
        for (check,) in csv_run.con.execute(
            "SELECT DISTINCT \"check\" FROM validation_errors WHERE source = 'usage'"
        ).fetchall()
    }
    assert {"greater_than_or_equal_to", "isin", "unknown_order"} <= checks


def test_every_rule_code_fires_with_default_settings(csv_run):
    fired = {code for (code,) in csv_run.con.execute("SELECT DISTINCT rule_code FROM refund_flags").fetchall()}
    assert fired == RULE_CODES


def test_every_signal_fires_with_default_settings(csv_run):
    fired = {code for (code,) in csv_run.con.execute("SELECT DISTINCT signal_code FROM abuse_signals").fetchall()}
    assert fired == SIGNAL_CODES


def test_refunds_of_every_status_and_some_processed_after_as_of(csv_night):
    with (csv_night / "refunds.csv").open(newline="") as file:
        refunds = list(csv.DictReader(file))
    assert {row["status"] for row in refunds} == {"pending", "paid", "rejected"}
    assert any(row["processed_at"] > "2026-04-01" and row["requested_at"] < "2026-04-01" for row in refunds)


def test_the_parquet_night_gets_the_same_flags_and_signals_as_the_csv_night(csv_run, parquet_run):
    flags = "SELECT refund_id, rule_code FROM refund_flags ORDER BY ALL"
    signals = "SELECT entity_id, signal_code FROM abuse_signals ORDER BY ALL"
    for query in (flags, signals):
        assert parquet_run.con.execute(query).fetchall() == csv_run.con.execute(query).fetchall()


def test_the_generate_command_prints_each_file_and_its_rows(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--scale", str(SMALL), "--seed", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for stem in STEMS:
        assert f"{tmp_path / stem}.csv" in result.output
        assert (tmp_path / f"{stem}.csv").exists()


@pytest.mark.parametrize("option", [["--scale", "0"], ["--scale", "1", "--format", "json"]])
def test_a_bad_option_is_a_usage_error(tmp_path, option):
    result = CliRunner().invoke(main, ["generate", *option, "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_the_files_do_not_depend_on_the_thread_count(tmp_path, monkeypatch):
    # Scale 0.05 (250,000 usage rows) is large enough for DuckDB to split the work.
    connect = duckdb.connect
    for threads in (1, 2):
        monkeypatch.setattr(
            "jobs.tools.generate.duckdb.connect", lambda threads=threads: connect(config={"threads": threads})
        )
        generate(tmp_path / str(threads), 0.05, SEED)
    assert digests(tmp_path / "1") == digests(tmp_path / "2")
