"""The benchmark's nightly delta (benchmarks/delta.py): a generated night cut at as_of into the
year before it and as_of's own records; run one after the other, they flag what one full run
flags, so the delta timing compares like with like."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from jobs.config import Settings
from jobs.pipeline import run
from jobs.tools.generate import generate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.check import differences, job_flags  # noqa: E402
from benchmarks.delta import history_as_of, split_night  # noqa: E402

AS_OF = date(2026, 3, 31)
QUIET = Settings(write_report=False, write_exports=False)


@pytest.fixture(scope="module", params=["csv", "parquet"])
def night(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"night-{request.param}")
    generate(folder / "full", scale=0.01, seed=7, file_format=request.param)
    return folder, split_night(folder / "full", AS_OF, folder)


def rows(folder: Path, stem: str, columns: str) -> list[tuple]:
    """`columns` of every row of one export of the split, read with DuckDB in billing time."""
    path = next(folder.glob(f"{stem}.*"))
    source = "read_parquet(?)" if path.suffix == ".parquet" else "read_csv(?, all_varchar = true)"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        return con.execute(f"SELECT {columns} FROM {source}", [str(path)]).fetchall()


def test_the_delta_holds_the_usage_of_as_of_and_the_history_the_usage_before_it(night):
    folder, _ = night
    day = "started_at::TIMESTAMPTZ::DATE"
    assert {started for (started,) in rows(folder / "delta", "usage", day)} == {AS_OF}
    assert max(started for (started,) in rows(folder / "history", "usage", day)) == history_as_of(AS_OF)


def test_a_refund_requested_before_as_of_and_processed_on_it_is_in_both_deliveries(night):
    folder, _ = night
    columns = "refund_id, requested_at::TIMESTAMPTZ::DATE, processed_at::TIMESTAMPTZ::DATE"
    delta = {
        refund_id
        for refund_id, requested, processed in rows(folder / "delta", "refunds", columns)
        if requested < AS_OF == processed
    }
    assert delta and delta <= {refund_id for refund_id, _, _ in rows(folder / "history", "refunds", columns)}


def test_history_then_delta_flags_what_a_full_run_flags(night):
    folder, rows = night
    assert all(count > 0 for stem, count in rows["delta"].items() if stem != "account_status"), rows
    run(QUIET, folder / "history", history_as_of(AS_OF), folder / "nightly.duckdb")
    run(QUIET, folder / "delta", AS_OF, folder / "nightly.duckdb")
    run(QUIET, folder / "full", AS_OF, folder / "rebuilt.duckdb")
    with (
        duckdb.connect(str(folder / "nightly.duckdb"), read_only=True) as nightly,
        duckdb.connect(str(folder / "rebuilt.duckdb"), read_only=True) as rebuilt,
    ):
        flags = job_flags(rebuilt)
        assert len({code for _, code in flags}) == 10  # every rule fires: the comparison has teeth
        assert differences(job_flags(nightly), flags, ("delta", "full rebuild")) == []
