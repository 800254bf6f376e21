"""`refund-recon query` is read-only in fact: only SELECT over the warehouse runs (issue #10).

Every escape a hostile analyst tried is refused with one line and exit code 1, and no file
anywhere changes; formula cells are neutralised in CSV and control characters never reach
the terminal raw.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A warehouse with runs and verdicts, a 'published report' beside it and a hard link to the warehouse."""
    db_path = tmp_path_factory.mktemp("query") / "out" / "recon.duckdb"
    db_path.parent.mkdir()
    with duckdb.connect(str(db_path)) as con:
        con.execute(
            "CREATE TABLE runs AS SELECT 'run1' AS run_id, DATE '2026-03-31' AS as_of, "
            "TIMESTAMPTZ '2026-04-01 02:00:00+08' AS finished_at, 'Asia/Shanghai' AS billing_time_zone"
        )
        con.execute("CREATE TABLE refund_verdicts AS SELECT 'R1' AS refund_id, 'compliant' AS verdict")
    (db_path.parent / "report-2026-03-31.html").write_text("<p>published</p>", encoding="utf-8")
    os.link(db_path, db_path.parent / "link.duckdb")
    return db_path


def query(db_path: Path, *args: str):
    return CliRunner().invoke(main, ["query", *args, "--db", str(db_path)])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


ESCAPES = [
    ("copy to a file", "COPY runs TO '{out}/stolen.csv'"),
    ("copy over the published report", "COPY (SELECT 'owned') TO '{out}/report-2026-03-31.html' (FORMAT csv)"),
    ("export database", "EXPORT DATABASE '{out}/dump'"),
    ("attach a hard link read-write", "ATTACH '{out}/link.duckdb' AS twin; DELETE FROM twin.runs"),
    ("attach a new file", "ATTACH '{out}/new.duckdb' AS other"),
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read_blob", "SELECT * FROM read_blob('/etc/hostname')"),
    ("read_text", "SELECT * FROM read_text('/etc/passwd')"),
    ("glob", "SELECT * FROM glob('/etc/*')"),
    ("a file as a table", "SELECT * FROM '/etc/passwd'"),
    ("install an extension", "INSTALL httpfs"),
    ("load an extension", "LOAD httpfs"),
    ("read a URL", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"),
    ("re-enable external access", "SET enable_external_access = true; SELECT * FROM read_text('/etc/passwd')"),
    ("unlock the configuration", "RESET lock_configuration"),
    ("a pragma writing a file", "PRAGMA enable_profiling; PRAGMA profiling_output = '{out}/profile.json'; SELECT 1"),
    ("create a table", "CREATE TABLE x AS SELECT 1"),
    ("create a temporary table", "CREATE TEMP TABLE x AS SELECT 1"),
    ("delete", "DELETE FROM runs"),
    ("drop", "DROP TABLE runs"),
    ("checkpoint", "CHECKPOINT"),
]


@pytest.mark.parametrize("sql", [sql for _, sql in ESCAPES], ids=[name for name, _ in ESCAPES])
def test_every_escape_is_refused_in_one_line_and_nothing_changes(warehouse, sql):
    folder = warehouse.parent
    before = snapshot(folder)
    outcome = query(warehouse, sql.format(out=folder))
    assert outcome.exit_code == 1, outcome.output
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("refund-recon: query failed") and outcome.stderr.count("\n") == 1
    assert "Traceback" not in outcome.output
    assert snapshot(folder) == before
    assert query(warehouse, "SELECT count(*) AS runs FROM runs", "--format", "csv").stdout.splitlines() == ["runs", "1"]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT refund_id, verdict FROM refund_verdicts", [["refund_id", "verdict"], ["R1", "compliant"]]),
        ("WITH v AS (SELECT * FROM refund_verdicts) SELECT count(*) AS n FROM v", [["n"], ["1"]]),
        ("FROM runs SELECT count(*) AS n", [["n"], ["1"]]),
        ("SELECT json_extract_string('{\"a\": \"b\"}', '$.a') AS a", [["a"], ["b"]]),
        ("SELECT 1 AS a; SELECT 2 AS b", [["b"], ["2"]]),
    ],
)
def test_select_over_the_warehouse_still_works(warehouse, sql, expected):
    outcome = query(warehouse, sql, "--format", "csv")
    assert outcome.exit_code == 0, outcome.output
    assert list(csv.reader(outcome.stdout.splitlines())) == expected


@pytest.mark.parametrize(
    "cell, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("plain", "plain"),
    ],
)
def test_csv_neutralises_formula_cells_like_the_nightly_exports(warehouse, cell, written):
    outcome = query(warehouse, f"SELECT $${cell}$$ AS cell, -5 AS number, -1.50 AS amount", "--format", "csv")
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.reader(io.StringIO(outcome.stdout, newline="")))
    assert rows[1] == [written, "-5", "-1.50"]


CONTROLS = [
    ("escape sequence", "chr(27) || '[2J'", "\\x1b[2J"),
    ("carriage return", "'a' || chr(13) || 'b'", "a\\rb"),
    ("backspace", "'a' || chr(8)", "a\\x08"),
    ("bell", "chr(7)", "\\x07"),
    ("delete", "chr(127)", "\\x7f"),
    ("C1 CSI", "chr(155) || '2J'", "\\x9b2J"),
    ("bidi override", "chr(8238) || 'txt'", "\\u202etxt"),
    ("bidi isolate", "chr(8294) || 'x'", "\\u2066x"),
]


@pytest.mark.parametrize(
    "expression, shown", [(expr, shown) for _, expr, shown in CONTROLS], ids=[name for name, _, _ in CONTROLS]
)
def test_the_table_shows_control_characters_escaped(warehouse, expression, shown):
    outcome = query(warehouse, f"SELECT {expression} AS value")
    assert outcome.exit_code == 0, outcome.output
    assert shown in outcome.stdout
    assert not any(
        (ord(char) < 32 and char != "\n") or 127 <= ord(char) < 160 or char in "\u202e\u2066" for char in outcome.stdout
    )


def test_json_keeps_control_characters_as_json_escapes(warehouse):
    outcome = query(warehouse, "SELECT chr(27) || chr(155) || chr(8238) AS value", "--format", "json")
    assert json.loads(outcome.stdout) == [{"value": "\x1b\x9b\u202e"}]
    assert "\x1b" not in outcome.stdout and "\x9b" not in outcome.stdout and "\u202e" not in outcome.stdout
