"""Publishing: the warehouse changes in one transaction or not at all."""

from __future__ import annotations

import duckdb
import pytest
from exports import AS_OF, purchase, refund, write_exports

from jobs.config import Settings
from jobs.pipeline import run
from jobs.stages import publish as publish_module
from jobs.stages.publish import PublishError

# These tests read the warehouse: no report or exports (tests/test_exports.py, tests/test_reliability.py).
PUBLISHING = Settings(write_report=False, write_exports=False)


def _tables(db_path) -> dict[str, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        names = [name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}


def test_a_run_publishes_the_spec_tables(tmp_path):
    folder = write_exports(
        tmp_path / "in",
        purchases=[purchase()],
        refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")],
    )
    db_path = tmp_path / "out" / "recon.duckdb"
    run(PUBLISHING, folder, AS_OF, db_path)
    tables = _tables(db_path)
    assert {"runs", "validation_errors", "refund_flags", "refund_verdicts", "abuse_signals", "abuse_cases"} <= set(
        tables
    )
    assert tables["runs"] == 1
    assert tables["refund_flags"] == 1
    assert tables["refund_verdicts"] == 1


def test_each_run_adds_one_runs_row_and_keeps_the_flag_history(tmp_path):
    folder = write_exports(
        tmp_path / "in",
        purchases=[purchase()],
        refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")],
    )
    db_path = tmp_path / "recon.duckdb"
    run(PUBLISHING, folder, AS_OF, db_path)
    run(PUBLISHING, folder, AS_OF, db_path)
    tables = _tables(db_path)
    assert tables["runs"] == 2
    assert tables["refund_flags"] == 1
    assert tables["refund_flags_history"] == 2


def test_a_publish_failing_midway_leaves_the_previous_night_intact(tmp_path, monkeypatch):
    folder = write_exports(
        tmp_path / "in",
        purchases=[purchase()],
        refunds=[refund(requested_at="2026-03-09 10:00:00", processed_at="2026-03-10 10:00:00")],
    )
    db_path = tmp_path / "recon.duckdb"
    run(PUBLISHING, folder, AS_OF, db_path)
    before = _tables(db_path)
    # The second night fails on a table published after the flags were already replaced.
    monkeypatch.setattr(publish_module, "LATEST_TABLES", (*publish_module.LATEST_TABLES, "no_such_table"))
    quiet_folder = write_exports(tmp_path / "in2", purchases=[purchase()], refunds=[])
    with pytest.raises(PublishError, match="warehouse unchanged"):
        run(PUBLISHING, quiet_folder, AS_OF, db_path)
    assert _tables(db_path) == before


def test_a_warehouse_held_by_another_writer_is_refused_without_a_traceback(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()], refunds=[refund()])
    db_path = tmp_path / "recon.duckdb"
    with duckdb.connect(str(db_path)), pytest.raises(PublishError, match="cannot open the warehouse"):
        run(PUBLISHING, folder, AS_OF, db_path)


def test_a_warehouse_from_before_the_wide_sums_takes_a_night_of_the_largest_amounts(tmp_path):
    db_path = tmp_path / "recon.duckdb"
    run(PUBLISHING, write_exports(tmp_path / "night1", purchases=[purchase()], refunds=[refund()]), AS_OF, db_path)
    with duckdb.connect(str(db_path)) as con:  # as an older job left it: sums in DECIMAL(18,2)
        for column in ("refunds_requested_amount", "at_risk_total"):
            con.execute(f"ALTER TABLE daily_reconciliation_history ALTER COLUMN {column} TYPE DECIMAL(18,2)")
    largest = "9999999999999999.99"
    orders = [
        purchase(order_id=f"O{n}", account_id=f"A{n}", entity_id=f"E{n}", list_price=largest, paid_cash_credit=largest)
        for n in range(3)
    ]
    refunds = [
        refund(
            refund_id=f"R{n}",
            order_id=f"O{n}",
            refund_cash_credit=largest,
            refund_amount=largest,
            requested_at="2026-03-09 10:00:00",
            processed_at="2026-03-10 10:00:00",
        )
        for n in range(3)
    ]
    run(PUBLISHING, write_exports(tmp_path / "night2", purchases=orders, refunds=refunds), AS_OF, db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert (
            con.execute(
                "SELECT CAST(max(refunds_requested_amount) AS VARCHAR), CAST(max(at_risk_total) AS VARCHAR) "
                "FROM daily_reconciliation_history"
            ).fetchone()
            == ("29999999999999999.97",) * 2
        )
