"""The command line (SPEC section 7): options, exit codes, the summary, and the warehouse a run
writes (SPEC section 6)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from click.testing import CliRunner
from exports import purchase, refund, write_exports

from jobs.cli import main
from jobs.config import ConfigError, config_keys, load_settings, number_range

SECTION_6_COLUMNS = {
    "runs": ["run_id", "as_of", "started_at", "finished_at", "status"],
    "validation_errors": ["run_id", "source", "line", "column", "check", "value", "message"],
    "refund_flags": [
        "run_id",
        "as_of",
        "refund_id",
        "order_id",
        "account_id",
        "entity_id",
        "rule_code",
        "category",
        "severity",
        "refund_status",
        "amount_at_risk",
        "evidence",
    ],
    "refund_verdicts": ["run_id", "as_of", "refund_id", "verdict", "rule_codes", "amount_at_risk"],
    "abuse_signals": ["run_id", "as_of", "entity_id", "signal_code", "evidence", "refund_ids"],
    "abuse_cases": [
        "run_id",
        "as_of",
        "case_id",
        "entity_ids",
        "signal_codes",
        "score",
        "refund_count",
        "amount_refunded",
        "disposition",
    ],
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def good_exports(folder: Path) -> Path:
    """Two orders of two entities: R1 compliant, R2 requested on day 7 (PAST_WINDOW)."""
    return write_exports(
        folder,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", account_id="A2", entity_id="E2")],
        refunds=[
            refund(refund_id="R1", order_id="O1"),
            refund(
                refund_id="R2", order_id="O2", requested_at="2026-03-07 10:00:00", processed_at="2026-03-08 10:00:00"
            ),
        ],
    )


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "refund-recon.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- help --------------------------------------------------------------------------------------


def test_run_help_explains_each_option():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for option, words in [
        ("--input", "exports"),
        ("--db", "warehouse"),
        ("--as-of", "YYYY-MM-DD"),
        ("--config", "TOML"),
    ]:
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


@pytest.mark.parametrize(
    "toml, key",
    [
        ("[refund_policy]\nrefund_window_days = 0\n", "refund_policy.refund_window_days"),
        ("[refund_policy]\nrefund_window = 5\n", "refund_policy.refund_window"),
        ('[billing]\ntime_zone = "Mars/Olympus"\n', "billing.time_zone"),
        ("[validation]\nmax_bad_row_fraction = 1.5\n", "validation.max_bad_row_fraction"),
        (
            '[refund_policy]\ndisqualifying_suspension_reasons = ["spam"]\n',
            "refund_policy.disqualifying_suspension_reasons",
        ),
    ],
    ids=["window-zero", "unknown-key", "bad-time-zone", "fraction-over-one", "unknown-reason"],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_bad_config_value_is_a_usage_error_naming_the_key(tmp_path, command, toml, key):
    folder = good_exports(tmp_path / "in")
    db = tmp_path / "recon.duckdb"
    extra = ["--db", str(db)] if command == "run" else []
    result = invoke(
        command, "--input", str(folder), "--as-of", "2026-03-31", "--config", str(config(tmp_path, toml)), *extra
    )
    assert result.exit_code == 2
    assert f"'{key}'" in result.output
    assert not db.exists()


def test_a_retired_config_key_is_still_taken_so_an_older_config_runs(tmp_path):
    folder = good_exports(tmp_path / "in")
    toml = "[validation]\nbatch_rows = 250000\n"  # rows per Pandera batch, before the checks ran as SQL
    result = invoke(
        "validate", "--input", str(folder), "--as-of", "2026-03-31", "--config", str(config(tmp_path, toml))
    )
    assert result.exit_code == 0, result.output


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


@pytest.fixture(scope="module")
def good_night(tmp_path_factory) -> SimpleNamespace:
    """The good exports run once as the night 2026-03-31 into out/recon.duckdb (created with its
    folder): the input `folder`, the warehouse `db` and the `result` of the command. The tests that
    only read them share it; a test that runs again works on a copy of the warehouse (`copied`)."""
    tmp = tmp_path_factory.mktemp("good")
    folder, db = good_exports(tmp / "in"), tmp / "out" / "recon.duckdb"
    result = invoke("run", "--input", str(folder), "--db", str(db), "--as-of", "2026-03-31")
    assert result.exit_code == 0, result.output
    return SimpleNamespace(folder=folder, db=db, result=result)


def copied(good_night: SimpleNamespace, tmp_path: Path) -> Path:
    """A copy of the good night's warehouse in `tmp_path`."""
    db = tmp_path / "recon.duckdb"
    shutil.copy(good_night.db, db)
    return db


def test_run_on_good_exports_exits_0_and_prints_the_summary(good_night):
    out = good_night.result.output
    assert "as_of 2026-03-31" in out
    assert re.search(r"rows in\s+loaded\s+quarantined", out)
    assert re.search(r"^\s+purchases\s+2\s+2\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+refunds\s+2\s+2\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+usage\s+0\s+0\s+0\s+0\s*$", out, re.M)
    assert re.search(r"^\s+PAST_WINDOW\s+1\s*$", out, re.M)
    assert re.search(r"^\s+MINUTES_USED\s+0\s*$", out, re.M)
    assert re.search(r"^\s+breach\s+USD\s+1\s+100\.00\s*$", out, re.M)
    assert re.search(r"^\s+compliant\s+USD\s+1\s+0\.00\s*$", out, re.M)


def test_run_creates_the_warehouse_with_the_section_6_tables_and_columns(good_night):
    with duckdb.connect(str(good_night.db), read_only=True) as con:
        for table, required in SECTION_6_COLUMNS.items():
            columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert set(required) <= set(columns), (table, sorted(set(required) - set(columns)))
        assert con.execute("SELECT refund_id, verdict FROM refund_verdicts ORDER BY refund_id").fetchall() == [
            ("R1", "compliant"),
            ("R2", "breach"),
        ]
        assert con.execute("SELECT refund_id, rule_code FROM refund_flags").fetchall() == [("R2", "PAST_WINDOW")]
        assert con.execute("SELECT count(*) FROM validation_errors").fetchone()[0] == 0


def test_the_runs_row_records_the_input_files_and_counts(good_night):
    with duckdb.connect(str(good_night.db), read_only=True) as con:
        as_of, status, rows_loaded, rows_quarantined, flag_counts, files = con.execute(
            "SELECT CAST(as_of AS VARCHAR), status, rows_loaded, rows_quarantined, flag_counts, input_files FROM runs"
        ).fetchone()
    assert (as_of, status, rows_loaded, rows_quarantined) == ("2026-03-31", "succeeded", 4, 0)
    assert flag_counts["PAST_WINDOW"] == 1
    purchases = next(item for item in files if item["source"] == "purchases")
    assert purchases["file_name"] == "purchases.csv"
    assert re.fullmatch(r"[0-9a-f]{64}", purchases["sha256"])
    assert (purchases["rows_in"], purchases["rows_loaded"], purchases["rows_quarantined"]) == (2, 2, 0)


def test_a_second_run_appends_to_runs_and_keeps_the_flag_history(good_night, tmp_path):
    db = copied(good_night, tmp_path)
    result = invoke("run", "--input", str(good_night.folder), "--db", str(db), "--as-of", "2026-03-31")
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
    result = invoke(
        "validate",
        "--input",
        str(folder),
        "--as-of",
        "2026-03-31",
        "--config",
        str(config(tmp_path, "[validation]\nmax_bad_row_fraction = 1.0\n")),
    )
    assert result.exit_code == 0, result.output
    assert "refunds line 2 [currency]" in result.output


# --- a rejected night tells you why (issue #14) ----------------------------------------------------


def a_night_with_two_files_over_the_limit(folder: Path) -> Path:
    """purchases: 2 of 4 bad (50%: O2's product, O4's sum); refunds: 1 of 2 bad (50%: R2's currency)."""
    return write_exports(
        folder,
        purchases=[
            purchase(order_id="O1"),
            purchase(order_id="O2", product="tv"),
            purchase(order_id="O3"),
            purchase(order_id="O4", paid_cash_credit="1.00"),
        ],
        refunds=[refund(refund_id="R1"), refund(refund_id="R2", currency="EUR")],
    )


REJECTED = [  # what the failure names: each file over the limit with its share, then its first rows
    "refund-recon: purchases: 2 of 4 rows quarantined (50.00%); refunds: 1 of 2 rows quarantined (50.00%), "
    "over max_bad_row_fraction 1.00%; nothing was written",
    "  purchases line 3 [product]: product must be one of call, conference, live, rtc_engine, got 'tv'",
    "  purchases line 5 [paid_cash_credit]: ",
    "  refunds line 3 [currency]: ",
]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_rejected_night_names_every_file_over_the_limit_with_its_share_and_first_rows(tmp_path, command):
    folder = a_night_with_two_files_over_the_limit(tmp_path / "in")
    result = invoke(command, "--input", str(folder), "--db", str(tmp_path / "recon.duckdb"), "--as-of", "2026-03-31")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("refund-recon: "))
    shown = lines[start:]
    assert len(shown) == len(REJECTED), result.stderr
    assert all(line.startswith(expected) for line, expected in zip(shown, REJECTED, strict=False)), result.stderr


def test_a_rejected_night_in_json_carries_each_file_over_the_limit_and_its_first_rows(tmp_path):
    import json

    folder = a_night_with_two_files_over_the_limit(tmp_path / "in")
    result = invoke("validate", "--log-format", "json", "--input", str(folder), "--as-of", "2026-03-31")
    assert result.exit_code == 1
    failure = json.loads(result.stdout.splitlines()[-1])
    assert failure["event"] == "run_failed"
    assert [
        (item["source"], item["quarantined"], item["rows_in"], item["share"]) for item in failure["files_over_limit"]
    ] == [("purchases", 2, 4, 0.5), ("refunds", 1, 2, 0.5)]
    assert [(row["line"], row["column"]) for row in failure["files_over_limit"][0]["first_rows"]] == [
        (3, "product"),
        (5, "paid_cash_credit"),
    ]


# --- the summary and the run's record, smaller items of issue #14 ---------------------------------


@pytest.fixture(scope="module")
def big_night(tmp_path_factory):
    """A published night of 1,200 usage rows (report off), and its replay from the warehouse."""
    from exports import usage

    tmp = tmp_path_factory.mktemp("big")
    folder = write_exports(
        tmp / "in", purchases=[purchase()], refunds=[refund()], usage=[usage(usage_id=f"U{n}") for n in range(1200)]
    )
    settings = config(tmp, "[outputs]\nreport = false\n")
    common = ["--db", str(tmp / "recon.duckdb"), "--config", str(settings), "--as-of", "2026-03-31"]
    night = invoke("run", "--input", str(folder), *common)
    replay = invoke("run", *common)
    assert night.exit_code == 0 and replay.exit_code == 0, (night.output, replay.output)
    return tmp, night, replay


def test_the_summary_prints_counts_with_thousands_separators(big_night):
    _, night, _ = big_night
    assert re.search(r"^\s+usage\s+1,200\s+1,200\s+0\s+0$", night.stdout, re.M), night.stdout


def test_a_replay_prints_no_empty_table_of_exports(big_night):
    _, _, replay = big_night
    assert "rows in" not in replay.stdout and "replayed from the warehouse" in replay.stdout, replay.stdout


def test_run_results_elapsed_seconds_is_finished_at_minus_started_at(big_night):
    import json
    from datetime import datetime

    tmp, _, _ = big_night
    results = json.loads((tmp / "run_results.json").read_text(encoding="utf-8"))
    started, finished = (datetime.fromisoformat(results[key]) for key in ("started_at", "finished_at"))
    assert abs((finished - started).total_seconds() - results["elapsed_seconds"]) < 0.002, results
    assert results["elapsed_seconds"] >= sum(results["stage_seconds"].values()) - 0.002


@pytest.mark.parametrize("night", ["structural", "over the limit", "unexpected"])
def test_a_run_failed_event_carries_the_run_id_of_the_run(tmp_path, monkeypatch, night):
    import json

    if night == "structural":
        folder = write_exports(tmp_path / "in", purchases=[purchase()], refunds=[refund()])
        (folder / "refunds.csv").write_text("refund_id\nR1\n", encoding="utf-8")
    elif night == "over the limit":
        folder = a_night_with_two_files_over_the_limit(tmp_path / "in")
    else:
        import jobs.pipeline

        folder = good_exports(tmp_path / "in")
        monkeypatch.setattr(jobs.pipeline, "reconcile", lambda runner: 1 / 0)
    result = invoke(
        "run",
        "--log-format",
        "json",
        "--input",
        str(folder),
        "--db",
        str(tmp_path / "recon.duckdb"),
        "--as-of",
        "2026-03-31",
    )
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and parsed[-1]["event"] == "run_failed", result.stdout
    assert parsed[-1]["run_id"] == parsed[0]["run_id"] and parsed[0]["event"] == "run_started"


# --- errors a person can act on (issue #10) -----------------------------------------------------
# Each case: what is on disk, the command line ({tmp} is the test's folder), the exit code, and a
# fragment of the one line saying what is wrong. No case may end in a traceback.

IN_A_YEAR_AND_A_MONTH = (date.today() + timedelta(days=400)).isoformat()


def a_night(tmp_path: Path) -> None:
    good_exports(tmp_path / "in")


def a_config(content: bytes):
    def write(tmp_path: Path) -> None:
        a_night(tmp_path)
        (tmp_path / "refund-recon.toml").write_bytes(content)

    return write


def a_published_night(tmp_path: Path) -> None:
    a_night(tmp_path)
    result = invoke(
        "run", "--input", str(tmp_path / "in"), "--db", str(tmp_path / "wh" / "recon.duckdb"), "--as-of", "2026-03-31"
    )
    assert result.exit_code == 0, result.output


def a_folder_where_the_report_goes(tmp_path: Path) -> None:
    a_published_night(tmp_path)
    report = tmp_path / "wh" / "report-2026-03-31.html"
    report.unlink()
    report.mkdir()


def a_read_only_warehouse_folder(tmp_path: Path) -> None:
    a_published_night(tmp_path)
    (tmp_path / "wh").chmod(0o555)


def a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")


RUN = "run --input {tmp}/in --db {tmp}/recon.duckdb --config {tmp}/refund-recon.toml"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


@pytest.mark.parametrize(
    "setup, command, exit_code, fragment",
    [
        # configuration (exit 2, naming the file or the key)
        (
            a_config(b'[billing]\ntime_zone = "Asia/Shanghai"  # \xff\n'),
            RUN + " --as-of 2026-03-31",
            2,
            "config file {tmp}/refund-recon.toml is not UTF-8",
        ),
        (
            a_config(b"[signals]\nserial_refunder_window_days = 100000000000\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'signals.serial_refunder_window_days' must be a whole number from 1 to",
        ),
        (
            a_config(b"[refund_policy]\nrefund_window_days = -5\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'refund_policy.refund_window_days' must be a whole number from 1 to",
        ),
        (
            a_config(b"[refund_policy]\nrefund_window_days = 100000\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'refund_policy.refund_window_days' must be a whole number from 1 to",
        ),
        (
            a_config(b"[gates]\nvolume_trailing_nights = 100000000000\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'gates.volume_trailing_nights'",
        ),
        (
            a_config(b"[gates.freshness_max_age_hours]\nusage = 1000000000000\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'gates.freshness_max_age_hours.usage'",
        ),
        (a_config(b"[duckdb]\nthreads = 100000\n"), RUN + " --as-of 2026-03-31", 2, "config key 'duckdb.threads'"),
        (
            a_config(b"[signals]\nrefund_velocity_factor = inf\n"),
            RUN + " --as-of 2026-03-31",
            2,
            "config key 'signals.refund_velocity_factor'",
        ),
        # dates (exit 2, naming the option)
        (
            a_night,
            "run --input {tmp}/in --db {tmp}/recon.duckdb --as-of 9999-12-31",
            2,
            "Invalid value for '--as-of': 9999-12-31 is after",
        ),
        (
            a_night,
            f"run --input {{tmp}}/in --db {{tmp}}/recon.duckdb --as-of {IN_A_YEAR_AND_A_MONTH}",
            2,
            f"Invalid value for '--as-of': {IN_A_YEAR_AND_A_MONTH} is after",
        ),
        (
            a_night,
            "run --input {tmp}/in --db {tmp}/recon.duckdb --as-of 0001-01-01",
            2,
            "Invalid value for '--as-of': 0001-01-01 is before 2000-01-01",
        ),
        (a_night, "validate --input {tmp}/in --as-of 9999-12-31", 2, "Invalid value for '--as-of'"),
        (
            a_night,
            "run --input {tmp}/in --db {tmp}/recon.duckdb --as-of 2026-02-30",
            2,
            "Invalid value for '--as-of': '2026-02-30' is not a date (day is out of range for month)",
        ),
        (
            a_night,
            "run --input {tmp}/in --db {tmp}/recon.duckdb --as-of 31/03/2026",
            2,
            "Invalid value for '--as-of': '31/03/2026' is not a date of the form YYYY-MM-DD",
        ),
        (
            a_night,
            "backfill --from 2026-02-30 --to 2026-03-02 --input {tmp}/in --db {tmp}/recon.duckdb",
            2,
            "Invalid value for '--from': '2026-02-30' is not a date",
        ),
        (
            a_night,
            "backfill --from 2026-03-01 --to 9999-12-31 --input {tmp}/in --db {tmp}/recon.duckdb",
            2,
            "Invalid value for '--to': 9999-12-31 is after",
        ),
        (
            a_night,
            "report --db {tmp}/recon.duckdb --as-of 2026-02-31",
            2,
            "Invalid value for '--as-of': '2026-02-31' is not a date",
        ),
        # files the command writes (exit 1, naming the file)
        (
            a_night,
            "dictionary --out {tmp}/missing/data-dictionary.md",
            1,
            "cannot write {tmp}/missing/data-dictionary.md: No such file or directory",
        ),
        (
            a_regular_file,
            "dictionary --out {tmp}/a-file/data-dictionary.md",
            1,
            "cannot write {tmp}/a-file/data-dictionary.md: Not a directory",
        ),
        (
            a_night,
            "dictionary --out /proc/refund-recon-data-dictionary.md",
            1,
            "cannot write /proc/refund-recon-data-dictionary.md",
        ),
        (
            a_folder_where_the_report_goes,
            "report --db {tmp}/wh/recon.duckdb",
            1,
            "cannot write {tmp}/wh/report-2026-03-31.html: Is a directory",
        ),
        pytest.param(
            a_read_only_warehouse_folder,
            "report --db {tmp}/wh/recon.duckdb",
            1,
            "cannot write {tmp}/wh/report-2026-03-31.html: Permission denied",
            marks=pytest.mark.skipif(ROOT, reason="root writes into a read-only folder"),
        ),
        (a_night, "report --db {tmp}/missing/recon.duckdb", 1, "{tmp}/missing/recon.duckdb: no warehouse here"),
    ],
    ids=[
        "config-not-utf8",
        "config-window-huge",
        "config-window-negative",
        "config-refund-window-huge",
        "config-nights-huge",
        "config-hours-huge",
        "config-threads-huge",
        "config-factor-infinite",
        "as-of-9999",
        "as-of-beyond-a-year",
        "as-of-year-1",
        "validate-as-of-9999",
        "as-of-feb-30",
        "as-of-not-iso",
        "backfill-from-feb-30",
        "backfill-to-9999",
        "report-as-of-feb-31",
        "dictionary-missing-folder",
        "dictionary-under-a-file",
        "dictionary-read-only-folder",
        "report-path-is-a-folder",
        "report-read-only-folder",
        "report-missing-folder",
    ],
)
def test_an_error_is_one_line_naming_what_is_wrong(tmp_path, setup, command, exit_code, fragment):
    setup(tmp_path)
    result = invoke(*command.format(tmp=tmp_path).split())
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if fragment.format(tmp=tmp_path) in line], result.output
    assert not (tmp_path / "recon.duckdb").exists()


def accepts(tmp_path: Path, key: str, value) -> bool:
    try:
        load_settings(config(tmp_path, f"{key} = {value}\n"))
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("key", config_keys())
def test_every_number_of_the_config_has_a_declared_range_and_nothing_beyond_it_is_taken(tmp_path, key):
    if not any(accepts(tmp_path, key, probe) for probe in (1, 2, 0.5, 100)):
        pytest.skip(f"{key} is not a number")
    limits = number_range(key)
    assert limits is not None, f"declare the range of {key} in jobs/config.py NUMBER_RANGES"
    for outside in (-1, 0 if limits.low_open or limits.low > 0 else -0.5, limits.high + 1, 10**12, "inf", "nan"):
        with pytest.raises(ConfigError, match=re.escape(f"config key '{key}' must be")):
            load_settings(config(tmp_path, f"{key} = {outside}\n"))


@pytest.mark.parametrize("end", ["high", "low"])
def test_a_night_runs_with_every_number_of_the_config_at_the_end_of_its_range(tmp_path, end):
    numbers = {key: number_range(key) for key in config_keys() if number_range(key) is not None}
    lines = [
        f"{key} = {getattr(limits, end) + (0.5 if end == 'low' and limits.low_open else 0)}"
        for key, limits in numbers.items()
    ]
    settings = config(tmp_path, "\n".join(lines) + "\n")
    result = invoke(
        "run",
        "--input",
        str(good_exports(tmp_path / "in")),
        "--db",
        str(tmp_path / "recon.duckdb"),
        "--as-of",
        "2026-03-31",
        "--config",
        str(settings),
    )
    assert result.exit_code == 0, result.output


# --- Ctrl-C ------------------------------------------------------------------------------------
# The command runs in a child process with one stage made slow (Python asleep, or DuckDB in a
# query that never ends inside the publishing transaction); SIGINT is sent once the slow part
# says it has begun, so it always lands inside that stage.

SLOW_STAGE = """
import sys, time
import duckdb
import jobs.pipeline as pipeline
from jobs.cli import main

name, how = sys.argv.pop(1), sys.argv.pop(1)
original = getattr(pipeline, name)

def slowed(*args, **kwargs):
    print("slow part begins", file=sys.stderr, flush=True)
    if how == "python":
        time.sleep(600)
    else:
        duckdb.connect().execute("SELECT count(*) FROM range(1000000000000) AS t(x) WHERE x % 7 = 3").fetchall()
    return original(*args, **kwargs)

setattr(pipeline, name, slowed)
sys.argv[0] = "refund-recon"
main()
"""


def warehouse_state(db: Path) -> list:
    with duckdb.connect(str(db), read_only=True) as con:
        return [
            con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("runs", "refund_verdicts", "refund_flags_history")
        ]


@pytest.mark.parametrize(
    "stage, function, how",
    [
        ("validate", "validate", "python"),
        ("publish", "publish", "duckdb"),
    ],
    ids=["in-python", "in-a-duckdb-query-while-publishing"],
)
def test_ctrl_c_ends_the_run_with_130_one_line_and_the_warehouse_as_it_was(good_night, tmp_path, stage, function, how):
    db = copied(good_night, tmp_path)  # the night 2026-03-31; the next night is interrupted
    before = warehouse_state(db)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_STAGE,
            function,
            how,
            "run",
            "--input",
            str(good_night.folder),
            "--db",
            str(db),
            "--as-of",
            "2026-04-01",
            "--log-format",
            "plain",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        progress = []
        for line in child.stderr:
            progress.append(line)
            if line == "slow part begins\n":
                assert progress[-2].rstrip().endswith(f"refund_recon: {stage} ..."), progress
                child.send_signal(signal.SIGINT)
        out = child.stdout.read()
        child.wait()
    finally:
        watchdog.cancel()
        child.kill()
    err = "".join(progress)
    assert child.returncode == 130, err
    assert "Traceback" not in err + out
    assert err.rstrip().splitlines()[-1] == "refund-recon: interrupted"
    assert len([line for line in err.splitlines() if f" {stage} " in line and "failed" in line]) == 1, err
    assert out == ""
    assert warehouse_state(db) == before
