"""`refund-recon report --from <outputs> --as-of D` (issue #13): the night's HTML report made from
a run's Parquet outputs (`<outputs>/<table>/as_of=<D>/*.parquet`) instead of the warehouse.

Two nights of data/sample (2026-03-30, -31) are published once for the module, with their
exports: `<db dir>/exports/parquet` is the DuckDB engine's layout of the outputs; the same files
cut into Spark's layout (`part-*` files, a `_SUCCESS` marker, hidden checksums) stand for a Spark
run's. The two pages may differ only in the minute they were generated at.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import load_settings
from jobs.engine.sqlfiles import quoted
from jobs.outputs.masking import mask_id
from jobs.outputs.parquet_night import open_night
from jobs.pipeline import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
NIGHTS = (date(2026, 3, 30), date(2026, 3, 31))
GENERATED = re.compile(r"Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} ")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The two nights in one warehouse, each with its Parquet exports."""
    db_path = tmp_path_factory.mktemp("report_from") / "recon.duckdb"
    for night in NIGHTS:
        run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, night, db_path).con.close()
    return db_path


def outputs(db_path: Path, folder: Path, layout: str) -> Path:
    """A copy of the warehouse's Parquet exports, as the DuckDB engine or a Spark run lays them out."""
    target = folder / "outputs"
    shutil.copytree(db_path.parent / "exports" / "parquet", target)
    if layout == "spark":
        as_spark_writes(target)
    return target


def as_spark_writes(folder: Path) -> None:
    """Each night's rows in two `part-*` files, the table's `_SUCCESS` marker and hidden checksums;
    times as Spark writes them by default (INT96: UTC, read by DuckDB without a zone)."""
    with duckdb.connect() as con:
        for data in sorted(folder.glob("*/as_of=*/data.parquet")):
            table = con.read_parquet(str(data))
            table = table.project(
                ", ".join(
                    f"timezone('UTC', {quoted(name)}) AS {quoted(name)}"
                    if str(kind) == "TIMESTAMP WITH TIME ZONE"
                    else quoted(name)
                    for name, kind in zip(table.columns, table.types, strict=True)
                )
            )
            [(rows,)] = table.aggregate("count(*)").fetchall()
            for part, (offset, limit) in enumerate(((0, rows // 2), (rows // 2, rows - rows // 2))):
                name = f"part-0000{part}-c0ffee.c000.snappy.parquet"
                table.limit(limit, offset).write_parquet(str(data.parent / name))
                (data.parent / f".{name}.crc").write_bytes(b"\x00")
            data.unlink()
            (data.parent.parent / "_SUCCESS").touch()


def report(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def page(folder: Path, night: date, shared: bool = False) -> str:
    html = (folder / f"report-{night}{'.shared' if shared else ''}.html").read_text(encoding="utf-8")
    assert len(GENERATED.findall(html)) == 1
    return GENERATED.sub("Generated … ", html)


def config(folder: Path, mask_shared_report: bool) -> Path:
    path = folder / "refund-recon.toml"
    sample = (SAMPLE / "refund-recon.toml").read_text(encoding="utf-8")
    path.write_text(f"{sample}\n[privacy]\nmask_shared_report = {str(mask_shared_report).lower()}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("layout", ["duckdb exports", "spark"])
@pytest.mark.parametrize("night", NIGHTS, ids=str)
def test_the_report_from_the_outputs_is_the_warehouses(warehouse, tmp_path, layout, night):
    """Both copies, the night before included (03-31's changes and trends read 03-30's partitions)."""
    folder = outputs(warehouse, tmp_path, layout)
    settings = ["--as-of", str(night), "--config", str(SAMPLE / "refund-recon.toml")]
    from_db = report("--db", str(warehouse), *settings)
    from_outputs = report("--from", str(folder), *settings)
    assert from_db.exit_code == 0 and from_outputs.exit_code == 0, from_db.output + from_outputs.output
    assert from_outputs.output.splitlines() == [
        f"wrote {folder / f'report-{night}.html'}",
        f"wrote {folder / f'report-{night}.shared.html'}",
    ]
    for shared in (False, True):
        assert page(folder, night, shared) == page(warehouse.parent, night, shared)


def test_times_spark_writes_without_a_zone_are_read_as_the_utc_instants_they_are(warehouse, tmp_path):
    con, _ = open_night(outputs(warehouse, tmp_path, "spark"), None, 30, load_settings(SAMPLE / "refund-recon.toml"))
    read = "SELECT refund_id, requested_at, processed_at FROM refunds ORDER BY refund_id"
    with duckdb.connect(str(warehouse), read_only=True) as stored:
        assert con.execute(read).fetchall() == stored.execute(read).fetchall()
    con.close()


def test_without_as_of_the_latest_night_is_reported(warehouse, tmp_path):
    folder = outputs(warehouse, tmp_path, "duckdb exports")
    assert report("--from", str(folder)).exit_code == 0
    assert [path.name for path in sorted(folder.glob("report-*"))] == [
        "report-2026-03-31.html",
        "report-2026-03-31.shared.html",
    ]


def lose(folder: Path, part: str) -> Path:
    shutil.rmtree(folder / part)
    return folder


@pytest.mark.parametrize(
    ("where", "night", "message"),
    [
        (lambda folder: folder, "2026-03-29", "no night 2026-03-29 here (its nights: 2026-03-30 to 2026-03-31)"),
        (lambda folder: folder / "none", "2026-03-31", "no such folder"),
        (lambda folder: folder.parent, "2026-03-31", "no night here"),
        (lambda folder: lose(folder, "runs/as_of=2026-03-31"), "2026-03-31", "no night 2026-03-31 here"),
        (lambda folder: lose(folder, "refund_flags/as_of=2026-03-31"), "2026-03-31", "lacks refund_flags/"),
        (lambda folder: lose(folder, "purchases/as_of=2026-03-31"), "2026-03-31", "lacks purchases/"),
    ],
    ids=["night not there", "no folder", "not outputs", "night not committed", "table missing", "records missing"],
)
def test_a_night_that_is_not_there_is_refused_in_one_line(warehouse, tmp_path, where, night, message):
    folder = where(outputs(warehouse, tmp_path, "spark"))
    result = report("--from", str(folder), "--as-of", night)
    (line,) = result.output.splitlines()
    assert result.exit_code == 1 and line.startswith(f"refund-recon: {folder}: ") and message in line
    assert not list(folder.glob("report-*")) if folder.is_dir() else True


def test_from_and_db_cannot_be_combined(warehouse, tmp_path):
    result = report("--from", str(outputs(warehouse, tmp_path, "spark")), "--db", str(warehouse))
    assert result.exit_code == 2 and "--from and --db cannot be combined" in result.output


@pytest.mark.parametrize("mask_shared_report", [True, False])
def test_the_shared_copy_follows_the_config(warehouse, tmp_path, mask_shared_report):
    folder = outputs(warehouse, tmp_path, "spark")
    result = report("--from", str(folder), "--config", str(config(tmp_path, mask_shared_report)))
    assert result.exit_code == 0, result.output
    shared = folder / "report-2026-03-31.shared.html"
    assert shared.is_file() == mask_shared_report
    full = (folder / "report-2026-03-31.html").read_text(encoding="utf-8")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        accounts = [account for (account,) in con.execute("SELECT DISTINCT account_id FROM refund_verdicts").fetchall()]
    printed = [account for account in accounts if account in full]
    assert printed
    if mask_shared_report:
        text = shared.read_text(encoding="utf-8")
        assert not [account for account in printed if account in text]
        assert mask_id(printed[0]) in text
