"""Analysts never break the nightly run (issue #14): readers never block a writer, never see half a night.

An analyst keeps a read-only DuckDB connection on the warehouse (the `--db` file) open all
night, in another process (DuckDB shares one database instance per file within a process, so
the reader must be a process of its own). The run and the reviewers' writes build the new
warehouse beside it and swap it in; the reader keeps the night it opened.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs import pipeline
from jobs.cli import main
from jobs.config import load_settings
from jobs.pipeline import run

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
AS_OF = date(2026, 3, 31)
SETTINGS = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)

# What a reader sees of the warehouse: nights run, and the latest night's verdicts and decisions.
VIEW_SQL = """
SELECT (SELECT count(*) FROM runs),
       (SELECT md5(string_agg(refund_id || ':' || verdict || ':' || run_id, ',' ORDER BY refund_id))
        FROM refund_verdicts),
       (SELECT count(*) FROM case_dispositions)
"""

# Holds one read-only connection from start to end; polls its view every 10 ms, answers "view"
# with it, and "stop" with every distinct view it saw.
_READER = r"""
import json, queue, sys, threading, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
view = lambda: list(con.execute(sys.argv[2]).fetchone())
requests = queue.Queue()
threading.Thread(target=lambda: [requests.put(line.strip()) for line in sys.stdin], daemon=True).start()
seen = [view()]
print(json.dumps(seen[0]), flush=True)
while True:
    try:
        request = requests.get(timeout=0.01)
    except queue.Empty:
        request = None
    current = view()
    if current != seen[-1]:
        seen.append(current)
    if request == "view":
        print(json.dumps(current), flush=True)
    if request == "stop":
        print(json.dumps(seen), flush=True)
        break
"""


class Reader:
    """An analyst's process holding the warehouse open read-only."""

    def __init__(self, db_path: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", _READER, str(db_path), VIEW_SQL],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.first = self._answer()

    def view(self) -> list:
        self.process.stdin.write("view\n")
        self.process.stdin.flush()
        return self._answer()

    def stop(self) -> list[list]:
        """Every distinct view the reader saw while it held the connection."""
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        seen = self._answer()
        assert self.process.wait(timeout=30) == 0
        return seen

    def _answer(self):
        line = self.process.stdout.readline()
        assert line, "the reader died"
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def view_now(db_path: Path) -> list:
    """What a connection opened now sees."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        return list(con.execute(VIEW_SQL).fetchone())


def night(db_path: Path):
    """The sample night published to `db_path` (the warehouse only: the report and exports are
    written from it afterwards, by their own tests)."""
    return run(SETTINGS, SAMPLE, AS_OF, db_path)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """The sample night published once."""
    db_path = tmp_path / "recon.duckdb"
    night(db_path)
    return db_path


@pytest.fixture
def reader(warehouse):
    held = Reader(warehouse)
    yield held
    held.close()


def during_publish(monkeypatch, action) -> None:
    """Call `action()` inside the run's publish, its night written but not yet swapped in."""
    real = pipeline.publish

    def publish_then_act(runner):
        real(runner)
        action()

    monkeypatch.setattr(pipeline, "publish", publish_then_act)


def first_case(db_path: Path) -> str:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute("SELECT min(case_id) FROM abuse_cases").fetchone()[0]


def decisions(db_path: Path) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            "SELECT case_id, disposition, reviewer FROM case_dispositions ORDER BY decided_at"
        ).fetchall()


# --- a reader holding the warehouse all night ---------------------------------------------------


def test_a_reader_holding_the_warehouse_all_night_neither_blocks_the_run_nor_sees_it(warehouse, reader, monkeypatch):
    seen_in_publish = []
    during_publish(monkeypatch, lambda: seen_in_publish.append(reader.view()))
    night(warehouse)  # succeeds: no PublishError
    assert seen_in_publish == [reader.first], "the reader saw the night being written"
    assert reader.view() == reader.first, "the reader's open connection changed under it"
    assert reader.stop() == [reader.first], "the reader saw more than one state"
    after = view_now(warehouse)
    assert after[0] == reader.first[0] + 1, "a new connection does not see tonight's run"
    assert after[1] != reader.first[1], "a new connection sees the previous night's verdicts"


def test_a_reader_holding_the_warehouse_does_not_block_a_replay(warehouse, reader):
    run(SETTINGS, None, AS_OF, warehouse)
    assert view_now(warehouse)[0] == reader.first[0] + 1
    assert reader.stop() == [reader.first]


def test_a_killed_writer_s_copy_is_not_replayed_by_the_next_run(warehouse):
    """A writer killed after committing into `<db>.next` leaves it, its change in `<db>.next.wal`."""
    case_id = first_case(warehouse)
    stale = warehouse.with_name(warehouse.name + ".next")
    shutil.copyfile(warehouse, stale)
    _leave_in_a_wal(stale, case_id, "ghost")
    night(warehouse)
    assert decisions(warehouse) == [], "the killed writer's change was replayed into the new night"
    assert not stale.exists() and not stale.with_name(stale.name + ".wal").exists()


def test_a_night_an_older_version_left_in_the_warehouse_s_wal_is_kept(warehouse):
    """Before #14 a run killed after COMMIT left its night in `<db>.wal`; the copy takes it along."""
    case_id = first_case(warehouse)
    _leave_in_a_wal(warehouse, case_id, "wally")
    night(warehouse)
    assert decisions(warehouse) == [(case_id, "confirmed", "wally")]
    assert not warehouse.with_name(warehouse.name + ".wal").exists()


_DIE_AFTER_COMMIT = """
import duckdb, os, sys
con = duckdb.connect(sys.argv[1])
con.execute("SET checkpoint_threshold = '1TB'")
con.execute("INSERT INTO case_dispositions (case_id, disposition, reviewer, decided_at) "
            "VALUES (?, 'confirmed', ?, now())", sys.argv[2:])
os._exit(0)  # killed: no checkpoint, the decision is only in the WAL
"""


def _leave_in_a_wal(db_path: Path, case_id: str, reviewer: str) -> None:
    """A decision committed into `db_path` by a process killed before checkpointing it."""
    subprocess.run([sys.executable, "-c", _DIE_AFTER_COMMIT, str(db_path), case_id, reviewer], check=True)
    assert db_path.with_name(db_path.name + ".wal").exists()


# --- reviewers' writes --------------------------------------------------------------------------


def decide(db_path: Path, case_id: str, *options: str):
    return CliRunner().invoke(
        main,
        [
            "review",
            "decide",
            case_id,
            "--disposition",
            "confirmed",
            "--reviewer",
            "rita",
            "--db",
            str(db_path),
            *options,
        ],
    )


def test_a_decision_lands_while_a_reader_holds_the_warehouse(warehouse, reader):
    case_id = first_case(warehouse)
    result = decide(warehouse, case_id)
    assert result.exit_code == 0, result.output
    assert decisions(warehouse) == [(case_id, "confirmed", "rita")]
    assert reader.stop() == [reader.first], "the reader saw the decision being written"


def _decide_in_a_process(db_path: Path, case_id: str, wait: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from jobs.cli import main; main()",
            "review",
            "decide",
            case_id,
            "--disposition",
            "confirmed",
            "--reviewer",
            "rita",
            "--db",
            str(db_path),
            "--wait",
            wait,
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_decision_made_while_a_run_publishes_waits_for_it_and_lands(warehouse, monkeypatch):
    case_id = first_case(warehouse)
    started = []

    def start_deciding():
        reviewer = _decide_in_a_process(warehouse, case_id, "60")
        started.append(reviewer)
        line = reviewer.stderr.readline()  # the reviewer is told it waits for the run
        assert "waiting" in line, line + reviewer.stderr.read()

    during_publish(monkeypatch, start_deciding)
    night(warehouse)
    _, err = started[0].communicate(timeout=60)
    assert started[0].returncode == 0, err
    assert decisions(warehouse) == [(case_id, "confirmed", "rita")], "the decision was lost"
    with duckdb.connect(str(warehouse), read_only=True) as con:  # the night it was made on shows it
        shown = con.execute("SELECT disposition FROM abuse_cases WHERE case_id = ?", [case_id]).fetchone()
    assert shown == ("confirmed",)


def test_a_decision_that_will_not_wait_for_a_publishing_run_is_refused_in_one_line(warehouse, monkeypatch):
    case_id = first_case(warehouse)
    refused = []

    def try_deciding():
        reviewer = _decide_in_a_process(warehouse, case_id, "0")
        refused.append((*reviewer.communicate(timeout=60), reviewer.returncode))

    during_publish(monkeypatch, try_deciding)
    night(warehouse)
    [(out, err, returncode)] = refused
    assert returncode == 1, out + err
    assert err.count("\n") == 1 and err.startswith("refund-recon: ") and "nothing recorded" in err, err
    assert decisions(warehouse) == []
    assert view_now(warehouse)[0] == 2, "the run was not published"
