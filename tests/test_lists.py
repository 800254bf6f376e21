"""`refund-recon lists` (issue 15): block and allow entries kept with their history in the warehouse,
read by each run's decisions, bad input refused in one line.

The warehouse is the sample night (data/sample) published once per module and copied per test. Its
pending refunds (docs/decisions.md): RF2603280016 (ENT0011342) breaks ACCOUNT_SUSPENDED;
RF2603310024 (ENT0011795) is held by an open case scoring 65; RF2603310026 (ENT0020607, paid with
fp_f5a0d2c86e47) is paid, its case scoring 30.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import load_settings
from jobs.pipeline import run
from jobs.stages.publish import write_lock
from jobs.tools.lists import Change, record

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
SETTINGS = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
FINGERPRINT = "fp_f5a0d2c86e47"


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    db_path = tmp_path_factory.mktemp("sample") / "recon.duckdb"
    run(SETTINGS, SAMPLE, AS_OF, db_path)
    return db_path


@pytest.fixture
def warehouse(sample_warehouse, tmp_path) -> Path:
    db_path = tmp_path / "recon.duckdb"
    shutil.copy(sample_warehouse, db_path)
    return db_path


def lists(db_path: Path, *args: str):
    return CliRunner().invoke(main, ["lists", *args, "--db", str(db_path)])


def events(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            "SELECT action, list_name, kind, value, reason, who FROM list_events ORDER BY event_id"
        ).fetchall()


def decisions(db_path: Path) -> dict[str, tuple[str, list[str]]]:
    con = run(SETTINGS, SAMPLE, AS_OF, db_path).con
    return {
        refund_id: (decision, reasons)
        for refund_id, decision, reasons in con.execute(
            "SELECT refund_id, decision, reasons FROM pending_refund_decisions"
        ).fetchall()
    }


# --- bad input: one line, exit 2, nothing recorded ------------------------------------------------

BAD_INPUT = [
    (
        ["add", "block", "card", "X", "--reason", "r", "--who", "ana"],
        "unknown kind 'card' (entity, account or fingerprint)",
    ),
    (["add", "deny", "entity", "X", "--reason", "r", "--who", "ana"], "unknown list 'deny' (block or allow)"),
    (["add", "block", "entity", "X", "--reason", "  ", "--who", "ana"], "empty reason: say why"),
    (["add", "block", "entity", "X", "--who", "ana"], "empty reason: say why"),
    (["add", "block", "entity", "X", "--reason", "r"], "empty who: say who"),
    (
        ["add", "block", "entity", "X", "--reason", "r", "--who", "ana", "--expires", "2020-01-01"],
        "expiry '2020-01-01' is in the past",
    ),
    (
        ["add", "block", "entity", "X", "--reason", "r", "--who", "ana", "--expires", "next week"],
        "expiry 'next week' is not an ISO 8601 date or time",
    ),
    (["remove", "block", "entity", "X", "--reason", "", "--who", "ana"], "empty reason: say why"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[message for _, message in BAD_INPUT])
def test_bad_input_is_refused_in_one_line_and_nothing_is_recorded(warehouse, args, message):
    result = lists(warehouse, *args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and message in result.output
    assert events(warehouse) == []


def test_removing_an_entry_not_listed_is_refused(warehouse):
    result = lists(warehouse, "remove", "block", "entity", "X", "--reason", "r", "--who", "ana")
    assert result.exit_code == 1 and result.output == "refund-recon: entity X is not on the block list\n"
    assert events(warehouse) == []


def test_no_warehouse_is_refused(tmp_path):
    result = lists(tmp_path / "none.duckdb", "show")
    assert result.exit_code == 1 and "no warehouse here" in result.output


# --- history and what is shown --------------------------------------------------------------------


def test_every_change_is_kept_and_show_lists_what_stands(warehouse):
    assert lists(warehouse, "add", "block", "entity", "E9", "--reason", "ring", "--who", "ana").exit_code == 0
    assert (
        lists(warehouse, "add", "block", "entity", "E9", "--reason", "ring", "--who", "bob").output
        == "added 0 of 1 entries (the others stand as given)\n"
    )
    assert (
        lists(
            warehouse, "add", "allow", "account", "A7", "--reason", "vip", "--who", "ana", "--expires", "2099-01-01"
        ).exit_code
        == 0
    )
    assert lists(warehouse, "remove", "block", "entity", "E9", "--reason", "cleared", "--who", "bob").exit_code == 0
    assert events(warehouse) == [
        ("add", "block", "entity", "E9", "ring", "ana"),
        ("add", "allow", "account", "A7", "vip", "ana"),
        ("remove", "block", "entity", "E9", "cleared", "bob"),
    ]
    shown = lists(warehouse, "show").output.splitlines()
    assert len(shown) == 1 and shown[0].startswith("allow account") and "A7  vip (ana" in shown[0]
    assert "until 2099-01-02 00:00 CST" in shown[0]
    history = lists(warehouse, "show", "--history").output.splitlines()
    assert [line.split()[3:5] for line in history] == [["add", "block"], ["add", "allow"], ["remove", "block"]]


def test_a_fingerprint_is_shown_masked(warehouse):
    lists(warehouse, "add", "block", "fingerprint", FINGERPRINT, "--reason", "stolen card", "--who", "ana")
    shown = lists(warehouse, "show").output + lists(warehouse, "show", "--history").output
    assert FINGERPRINT not in shown and "fp_…47" in shown


def expire(db_path: Path, list_name: str, kind: str, value: str) -> None:
    """An entry that expired an hour ago, as if added before (the command refuses a past expiry)."""
    with duckdb.connect(str(db_path)) as con:
        record(
            con,
            [Change("add", list_name, kind, value, "short trial", "ana", datetime.now(UTC) - timedelta(hours=1))],
            datetime.now(UTC) - timedelta(days=1),
        )


def test_an_expired_entry_is_shown_as_ignored(warehouse):
    expire(warehouse, "block", "entity", "E9")
    (line,) = lists(warehouse, "show").output.splitlines()
    assert "E9  short trial" in line and ", EXPIRED " in line and line.endswith(": ignored)")


# --- what the run makes of them -------------------------------------------------------------------


def test_the_next_run_reads_the_lists(warehouse):
    for args in (
        ["block", "fingerprint", FINGERPRINT, "--reason", "stolen card"],
        ["allow", "entity", "ENT0011795", "--reason", "key account"],
        ["allow", "entity", "ENT0011342", "--reason", "key account"],
    ):
        assert lists(warehouse, "add", *args, "--who", "ana").exit_code == 0
    found = decisions(warehouse)
    assert found["RF2603310026"] == (
        "hold",
        [
            "case C-9c7e07232743 (open, score 30.0, hold at 60: REFUND_VELOCITY)",
            "block fingerprint fp_…47: stolen card (ana)",
        ],
    )
    assert found["RF2603310024"][0] == "pay" and found["RF2603310024"][1][-1].endswith("- lifts the hold")
    assert found["RF2603280016"][0] == "decline"  # the allow list never lets a rule breach through
    assert found["RF2603280016"][1][0] == "ACCOUNT_SUSPENDED"


def test_an_expired_block_is_ignored_by_the_run_and_says_so(warehouse):
    expire(warehouse, "block", "fingerprint", FINGERPRINT)
    decision, reasons = decisions(warehouse)["RF2603310026"]
    assert decision == "pay"
    assert reasons[-1].startswith("block fingerprint fp_…47: short trial (ana, until ") and reasons[-1].endswith(
        ") expired, ignored"
    )


# --- export and import ----------------------------------------------------------------------------


def test_export_then_import_into_another_warehouse_gives_the_same_entries(warehouse, sample_warehouse, tmp_path):
    lists(warehouse, "add", "block", "fingerprint", FINGERPRINT, "--reason", "=cmd|' /C calc'!A0", "--who", "ana")
    lists(warehouse, "add", "allow", "account", "A7", "--reason", "vip", "--who", "ana", "--expires", "2099-01-01")
    out = tmp_path / "lists.csv"
    assert lists(warehouse, "export", str(out)).output == f"wrote 2 entries to {out}\n"
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[0]["value"] == FINGERPRINT and rows[0]["reason"].startswith("'=")  # neutralised for spreadsheets
    other = tmp_path / "other.duckdb"
    shutil.copy(sample_warehouse, other)
    assert lists(other, "import", str(out)).output == "imported 2 of 2 entries\n"
    assert [event[1:] for event in events(other)] == [event[1:] for event in events(warehouse)]
    assert lists(other, "import", str(out)).output == "imported 0 of 2 entries (the others stand as given)\n"


def test_an_import_with_a_bad_row_records_nothing(warehouse, tmp_path):
    path = tmp_path / "lists.csv"
    path.write_text("list,kind,value,reason,who\nblock,entity,E1,ring,ana\nblock,card,X,r,ana\n", encoding="utf-8")
    result = lists(warehouse, "import", str(path))
    assert (
        result.exit_code == 2
        and result.output == f"refund-recon: {path} line 3: unknown kind 'card' (entity, account or fingerprint)\n"
    )
    assert events(warehouse) == []


# --- one writer at a time -------------------------------------------------------------------------


def test_a_change_while_another_writer_holds_the_warehouse_is_refused_with_nothing_recorded(warehouse):
    with write_lock(warehouse, 0):
        result = lists(warehouse, "add", "block", "entity", "E9", "--reason", "r", "--who", "ana", "--wait", "0")
    assert result.exit_code == 1 and "nothing recorded" in result.output.splitlines()[-1]
    assert events(warehouse) == []
