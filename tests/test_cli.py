"""The command line (SPEC section 7): options, exit codes, the summary, and the warehouse a run
writes (SPEC section 6)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from exports import purchase, refund, write_exports
from jobs.cli import main

SECTION_6_COLUMNS = {
    "runs": ["run_id", "as_of", "started_at", "finished_at", "status"],
    "validation_errors": ["run_id", "source", "line", "column", "check", "value", "message"],
    "refund_flags": ["run_id", "as_of", "refund_id", "order_id", "account_id", "entity_id", "rule_code",
                     "category", "severity", "refund_status", "amount_at_risk", "evidence"],
    "refund_verdicts": ["run_id", "as_of", "refund_id", "verdict", "rule_codes", "amount_at_risk"],
    "abuse_signals": ["run_id", "as_of", "entity_id", "signal_code", "evidence", "refund_ids"],
    "abuse_cases": ["run_id", "as_of", "case_id", "entity_ids", "signal_codes", "score", "refund_count",
                    "amount_refunded", "disposition"],
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def good_exports(folder: Path) -> Path:
    """Two orders of two entities: R1 compliant, R2 requested on day 7 (PAST_WINDOW)."""
    return write_exports(
        folder,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", account_id="A2", entity_id="E2")],
        refunds=[refund(refund_id="R1", order_id="O1"),
                 refund(refund_id="R2", order_id="O2", requested_at="2026-03-07 10:00:00",
                        processed_at="2026-03-08 10:00:00")],
    )


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "refund-recon.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- help --------------------------------------------------------------------------------------

def test_run_help_explains_each_option():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for option, words in [("--input", "exports"), ("--db", "warehouse"), ("--as-of", "YYYY-MM-DD"),
                          ("--config", "TOML")]:
        line = next(line for line in result.output.splitlines() if line.strip().startswith(option))
        assert words in line, line


def test_validate_help_explains_each_option_and_reads_a_warehouse_only():
    result = invoke("validate", "--help")
    assert result.exit_code == 0
    assert "write" in result.output and "nothing" in result.output
    for option in ("--input", "--as-of", "--config", "--db"):
        assert option in result.output
    assert "read-only" in result.output


# --- usage errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("toml, key", [
    ("[refund_policy]\nrefund_window_days = 0\n", "refund_policy.refund_window_days"),
    ("[refund_policy]\nrefund_window = 5\n", "refund_policy.refund_window"),
    ("[billing]\ntime_zone = \"Mars/Olympus\"\n", "billing.time_zone"),
    ("[validation]\nmax_bad_row_fraction = 1.5\n", "validation.max_bad_row_fraction"),
    ("[refund_policy]\ndisqualifying_suspension_reasons = [\"spam\"]\n",
     "refund_policy.disqualifying_suspension_reasons"),
], ids=["window-zero", "unknown-key", "bad-time-zone", "fraction-over-one", "unknown-reason"])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_bad_config_value_is_a_usage_error_naming_the_key(tmp_path, command, toml, key):
    folder = good_exports(tmp_path / "in")
    db = tmp_path / "recon.duckdb"
    extra = ["--db", str(db)] if command == "run" else []
    result = invoke(command, "--input", str(folder), "--as-of", "2026-03-31",
                    "--config", str(config(tmp_path, toml)), *extra)
    assert result.exit_code == 2
    assert f"'{key}'" in result.output
    assert not db.exists()


@pytest.mark.parametrize("as_of", ["2026-02-30", "31/03/2026", "yesterday"])
def test_a_bad_as_of_is_a_usage_error(tmp_path, as_of):
    folder = good_exports(tmp_path / "in")
    db = tmp_path / "recon.duckdb"
    result = invoke("run", "--input", str(folder), "--db", str(db), "--as-of", as_of)
    assert result.exit_code == 2
    assert "--as-of" in result.output
    assert not db.exists()


def test_run_without_input_on_an_empty_warehouse_has_nothing_to_replay(tmp_path):
    result = invoke("run", "--db", str(tmp_path / "recon.duckdb"), "--as-of", "2026-03-31")
    assert result.exit_code == 1
    assert "nothing is stored on or before 2026-03-31 to replay; give --input" in result.output


def test_validate_without_input_is_a_usage_error():
    result = invoke("validate")
    assert result.exit_code == 2
    assert "--input" in result.output


# --- a good run --------------------------------------------------------------------------------

def test_run_on_good_exports_exits_0_and_prints_the_summary(tmp_path):
    folder = good_exports(tmp_path / "in")
    result = invoke("run", "--input", str(folder), "--db", str(tmp_path / "recon.duckdb"), "--as-of", "2026-03-31")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "as_of 2026-03-31" in out
    assert re.search(r"rows in\s+loaded\s+quarantined", out)
    assert re.search(r"^\s+purchases\s+2\s+2\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+refunds\s+2\s+2\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+usage\s+0\s+0\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+PAST_WINDOW\s+1\s*$", out, re.M)
    assert re.search(r"^\s+MINUTES_USED\s+0\s*$", out, re.M)
    assert re.search(r"^\s+breach\s+USD\s+1\s+100\.00\s*$", out, re.M)
    assert re.search(r"^\s+compliant\s+USD\s+1\s+0\.00\s*$", out, re.M)


def test_run_creates_the_warehouse_with_the_section_6_tables_and_columns(tmp_path):
    db = tmp_path / "out" / "recon.duckdb"
    result = invoke("run", "--input", str(good_exports(tmp_path / "in")), "--db", str(db), "--as-of", "2026-03-31")
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        for table, required in SECTION_6_COLUMNS.items():
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert set(required) <= set(columns), (table, sorted(set(required) - set(columns)))
        assert con.execute("SELECT refund_id, verdict FROM refund_verdicts ORDER BY refund_id").fetchall() == [
            ("R1", "compliant"), ("R2", "breach"),
        ]
        assert con.execute("SELECT refund_id, rule_code FROM refund_flags").fetchall() == [("R2", "PAST_WINDOW")]
        assert con.execute("SELECT count(*) FROM validation_errors").fetchone()[0] == 0


def test_the_runs_row_records_the_input_files_and_counts(tmp_path):
    db = tmp_path / "recon.duckdb"
    folder = good_exports(tmp_path / "in")
    assert invoke("run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31").exit_code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        as_of, status, rows_loaded, rows_quarantined, flag_counts, files = con.execute(
            "SELECT CAST(as_of AS VARCHAR), status, rows_loaded, rows_quarantined, flag_counts, input_files FROM runs"
        ).fetchone()
    assert (as_of, status, rows_loaded, rows_quarantined) == ("2026-03-31", "succeeded", 4, 0)
    assert flag_counts["PAST_WINDOW"] == 1
    purchases = next(item for item in files if item["source"] == "purchases")
    assert purchases["file_name"] == "purchases.csv"
    assert re.fullmatch(r"[0-9a-f]{64}", purchases["sha256"])
    assert (purchases["rows_in"], purchases["rows_loaded"], purchases["rows_quarantined"]) == (2, 2, 0)


def test_a_second_run_appends_to_runs_and_keeps_the_flag_history(tmp_path):
    db = tmp_path / "recon.duckdb"
    folder = good_exports(tmp_path / "in")
    for _ in range(2):
        result = invoke("run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31")
        assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        run_ids = [run_id for (run_id,) in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
        assert len(run_ids) == 2 and run_ids[0] != run_ids[1]
        assert con.execute(
            "SELECT run_id, refund_id, rule_code FROM refund_flags_history ORDER BY run_id"
        ).fetchall() == sorted((run_id, "R2", "PAST_WINDOW") for run_id in run_ids)
        assert con.execute("SELECT DISTINCT run_id FROM refund_flags").fetchall() == [(run_ids[1],)]


def test_validate_writes_nothing(tmp_path, monkeypatch):
    folder = good_exports(tmp_path / "in")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    result = invoke("validate", "--input", str(folder), "--as-of", "2026-03-31")
    assert result.exit_code == 0, result.output
    assert re.search(r"^\s+PAST_WINDOW\s+1\s*$", result.output, re.M)
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before


def test_validate_lists_the_first_quarantined_rows(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()], refunds=[refund(currency="EUR")])
    result = invoke("validate", "--input", str(folder), "--as-of", "2026-03-31",
                    "--config", str(config(tmp_path, "[validation]\nmax_bad_row_fraction = 1.0\n")))
    assert result.exit_code == 0, result.output
    assert "refunds line 2 [currency]" in result.output
