"""What a run shows while it works (issue #4): plain lines, JSON Lines, the progress display,
the final summary or failure, and the exit codes of SPEC section 7 in every log format."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from exports import AS_OF, purchase, refund, write_exports

from jobs import cli, logs
from jobs.config import Settings
from jobs.pipeline import run
from jobs.stages.loading import StructuralError

FORMATS = ["auto", "plain", "json"]
NIGHT = ["--as-of", "2026-03-31"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def tiny_night(folder):
    """R1 compliant, R2 past the window (100.00 USD at risk), R3 quarantined (EUR on a USD order):
    refunds 3 in, 2 loaded, 1 quarantined; in all 4 rows loaded, 1 quarantined."""
    return write_exports(
        folder,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", account_id="A2", entity_id="E2")],
        refunds=[
            refund(refund_id="R1", order_id="O1"),
            refund(
                refund_id="R2", order_id="O2", requested_at="2026-03-07 10:00:00", processed_at="2026-03-08 10:00:00"
            ),
            refund(refund_id="R3", order_id="O1", currency="EUR"),
        ],
    )


def config(tmp_path, outputs: bool = True):
    path = tmp_path / "refund-recon.toml"
    toml = "[validation]\nmax_bad_row_fraction = 1.0\n"
    if not outputs:
        toml += "[outputs]\nreport = false\nexports = false\n"
    path.write_text(toml, encoding="utf-8")
    return str(path)


def broken_night(folder):
    """refunds.csv without its currency column: a structural error."""
    folder = write_exports(folder, purchases=[purchase()], refunds=[refund()])
    path = folder / "refunds.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace(",currency,", ",currency_code,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    """One published night with --log-format json (report and exports on: every stage runs)."""
    tmp = tmp_path_factory.mktemp("json")
    result = invoke(
        "run",
        "--log-format",
        "json",
        "--input",
        str(tiny_night(tmp / "in")),
        "--db",
        str(tmp / "recon.duckdb"),
        "--config",
        config(tmp),
        *NIGHT,
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def billing_local_time(monkeypatch):
    """The process's local time zone set to UTC+8, so a local timestamp would show."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- plain ------------------------------------------------------------------------------------


def test_off_a_terminal_auto_writes_plain_utc_lines_to_stderr_and_the_summary_to_stdout(tmp_path, billing_local_time):
    before = datetime.now(UTC).replace(microsecond=0)
    result = invoke(
        "run",
        "--input",
        str(tiny_night(tmp_path / "in")),
        "--db",
        str(tmp_path / "recon.duckdb"),
        "--config",
        config(tmp_path, outputs=False),
        *NIGHT,
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines and all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING) refund_recon: .+", line) for line in lines
    ), lines
    assert any(" WARNING refund_recon: Freshness of purchases: " in line for line in lines), lines
    stamps = {datetime.fromisoformat(line.split()[0]) for line in lines}
    assert all(before <= stamp <= before + timedelta(minutes=5) for stamp in stamps), (before, stamps)
    assert any(re.search(r"validate done in \d+\.\ds \(loaded 4, quarantined 1\)$", line) for line in lines), lines
    assert "refund_recon" not in result.stdout and "as_of 2026-03-31" in result.stdout


# --- json -------------------------------------------------------------------------------------


def test_json_mode_stdout_is_json_lines_only_ending_with_run_finished_and_stderr_is_empty(json_run):
    parsed = events(json_run.stdout)
    assert json_run.stderr == ""
    assert [event["event"] for event in parsed][-1] == "run_finished"
    assert all(set(event) >= {"ts", "level", "logger", "message", "event"} for event in parsed)
    assert all(
        event["ts"].endswith("Z") and datetime.fromisoformat(event["ts"]).utcoffset() == timedelta(0)
        for event in parsed
    )


def test_json_mode_gives_every_stage_a_start_and_an_end_with_rows_seconds_and_memory(json_run):
    parsed = events(json_run.stdout)
    started = [event["stage"] for event in parsed if event["event"] == "stage_started"]
    finished = {event["stage"]: event for event in parsed if event["event"] == "stage_finished"}
    assert started == list(finished) and {"load", "validate", "rules", "publish", "report", "exports"} <= set(started)
    for event in finished.values():
        assert isinstance(event["seconds"], float) and event["seconds"] >= 0
        assert isinstance(event["rows"], dict) and "peak_rss_bytes" in event
    assert finished["validate"]["rows"] == {"loaded": 4, "quarantined": 1}
    assert finished["rules"]["rows"] == {"flags": 1}
    assert len({event["run_id"] for event in parsed}) == 1


def test_run_finished_carries_the_counts_the_flags_and_the_money_as_strings(json_run):
    summary = events(json_run.stdout)[-1]
    assert (summary["status"], summary["as_of"]) == ("succeeded", "2026-03-31")
    assert summary["files"]["refunds"] == {"rows_in": 3, "loaded": 2, "quarantined": 1, "after_as_of": 0}
    assert summary["files"]["purchases"] == {"rows_in": 2, "loaded": 2, "quarantined": 0, "after_as_of": 0}
    assert summary["flags"]["PAST_WINDOW"] == 1 and summary["flags"]["MINUTES_USED"] == 0
    assert summary["verdicts"]["breach"]["USD"] == {"refunds": 1, "amount_at_risk": "100.00"}
    assert summary["verdicts"]["compliant"]["USD"] == {"refunds": 1, "amount_at_risk": "0.00"}
    finished = [event["stage"] for event in events(json_run.stdout) if event["event"] == "stage_finished"]
    assert list(summary["stage_seconds"]) == finished


def test_run_finished_carries_the_runs_peak_memory_the_highest_of_its_stages(json_run):
    stage_peaks = [event["peak_rss_bytes"] for event in events(json_run.stdout) if event["event"] == "stage_finished"]
    assert events(json_run.stdout)[-1]["peak_rss_bytes"] == max(stage_peaks) > 0


def test_validate_in_json_mode_ends_with_the_summary_and_the_first_quarantined_rows(tmp_path):
    result = invoke(
        "validate",
        "--log-format",
        "json",
        "--input",
        str(tiny_night(tmp_path / "in")),
        "--config",
        config(tmp_path),
        *NIGHT,
    )
    assert result.exit_code == 0, result.output
    summary = events(result.stdout)[-1]
    assert (summary["event"], summary["status"]) == ("run_finished", "validated")
    assert [(row["source"], row["column"]) for row in summary["first_quarantined"]] == [("refunds", "currency")]


# --- failures and exit codes ----------------------------------------------------------------


def test_a_structural_error_in_json_mode_is_a_run_failed_event_and_exit_1(tmp_path):
    result = invoke(
        "run",
        "--log-format",
        "json",
        "--input",
        str(broken_night(tmp_path / "in")),
        "--db",
        str(tmp_path / "recon.duckdb"),
        *NIGHT,
    )
    assert result.exit_code == 1
    assert result.stderr == ""
    failure = events(result.stdout)[-1]
    assert (failure["event"], failure["level"], failure["exit_code"]) == ("run_failed", "ERROR", 1)
    assert "refunds.csv" in failure["message"] and "currency" in failure["message"]
    assert not (tmp_path / "recon.duckdb").exists()


@pytest.mark.parametrize("log_format", ["auto", "plain"])
def test_a_structural_error_off_a_terminal_ends_stderr_with_one_refund_recon_line(tmp_path, log_format):
    result = invoke(
        "run",
        "--log-format",
        log_format,
        "--input",
        str(broken_night(tmp_path / "in")),
        "--db",
        str(tmp_path / "recon.duckdb"),
        *NIGHT,
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("refund-recon: ") and "refunds.csv" in last, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("log_format", FORMATS)
def test_exit_codes_follow_spec_section_7_in_every_format(tmp_path, log_format):
    broken = broken_night(tmp_path / "broken")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[refund_policy]\nrefund_window_days = 0\n", encoding="utf-8")
    common = ["--log-format", log_format, *NIGHT]
    assert invoke("run", "--input", str(broken), "--db", str(tmp_path / "r.duckdb"), *common).exit_code == 1
    assert invoke("validate", "--input", str(broken), *common).exit_code == 1
    assert invoke("run", "--input", str(broken), "--config", str(bad_config), *common).exit_code == 2
    assert invoke("validate", "--input", str(broken), "--config", str(bad_config), *common).exit_code == 2


def test_an_unknown_log_format_is_a_usage_error():
    result = invoke("run", "--log-format", "xml", "--input", "x")
    assert result.exit_code == 2 and "--log-format" in result.stderr


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_an_unexpected_error_ends_in_one_clean_failure_and_exit_1(tmp_path, monkeypatch, log_format):
    def broken_run(*args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "run", broken_run)
    result = invoke("run", "--log-format", log_format, "--input", str(tmp_path), *NIGHT)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    if log_format == "json":
        failure = events(result.stdout)[-1]
        assert failure["event"] == "run_failed" and "ZeroDivisionError: boom" in failure["message"]
    else:
        assert result.stderr.splitlines() == [
            "refund-recon: run failed on an unexpected error (ZeroDivisionError: boom)"
        ]


# --- warnings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "log_format, stream",
    [("auto", FakeTerminal), ("auto", io.StringIO), ("plain", io.StringIO), ("json", io.StringIO)],
    ids=["auto-terminal", "auto-pipe", "plain", "json"],
)
def test_warnings_show_in_every_format(log_format, stream):
    output = stream()
    with logs.logging_to(log_format, output):
        logs.log.warning("gate G1: 3 refunds over the limit", extra={"event": "gate_warning", "gate": "G1"})
    text = output.getvalue()
    assert "gate G1: 3 refunds over the limit" in text
    if log_format == "json":
        (event,) = events(text)
        assert (event["level"], event["event"], event["gate"]) == ("WARNING", "gate_warning", "G1")
    elif stream is io.StringIO:
        assert " WARNING refund_recon: gate G1" in text


# --- progress on a terminal -------------------------------------------------------------------


def test_on_a_terminal_each_stage_spins_then_shows_a_tick_with_its_time_and_row_counts(tmp_path):
    terminal = FakeTerminal()
    with logs.logging_to("auto", terminal):
        result = run(Settings(max_bad_row_fraction=1.0), tiny_night(tmp_path / "in"), AS_OF, db_path=None)
    screen = ANSI.sub("", terminal.getvalue())
    assert "\x1b[" in terminal.getvalue()  # drawn as a terminal, not as plain lines
    for stage in result.stage_seconds:
        assert re.search(rf"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] {stage} \d+\.\ds", screen), (stage, screen)
        assert re.search(rf"✓ {stage} \d+\.\ds", screen), (stage, screen)
    assert re.search(r"✓ validate \d+\.\ds \(loaded 4, quarantined 1\)", screen), screen


def test_on_a_terminal_a_failure_marks_the_running_stage_and_ends_with_the_message(tmp_path):
    terminal = FakeTerminal()
    with logs.logging_to("auto", terminal):
        with pytest.raises(StructuralError) as raised:
            run(Settings(), broken_night(tmp_path / "in"), AS_OF, db_path=None)
        logs.run_failed(str(raised.value))
    screen = ANSI.sub("", terminal.getvalue()).replace("\r", "")
    assert re.search(r"✗ load failed after \d+\.\ds", screen), screen
    assert screen.rstrip().splitlines()[-1] == f"refund-recon: {raised.value}"


def test_a_failure_outside_a_configured_command_is_still_one_refund_recon_line(capsys):
    logs.run_failed("the warehouse is busy")
    assert capsys.readouterr().err == "refund-recon: the warehouse is busy\n"


# --- progress bars (issue #14) ----------------------------------------------------------------


def terminal_screen(terminal: FakeTerminal) -> str:
    return ANSI.sub("", terminal.getvalue()).replace("\r", "\n")


def drawn(handler) -> None:
    """Draw the live display now, not at its next tick."""
    handler.progress.refresh()


def test_on_a_terminal_a_stage_that_knows_its_steps_draws_a_bar_with_step_n_of_m():
    terminal = FakeTerminal()
    with logs.logging_to("auto", terminal) as handler:
        logs.log.info("rules ...", extra={"event": "stage_started", "stage": "rules"})
        logs.step_progress(3, 12, "rules/MINUTES_USED")
        drawn(handler)
    assert re.search(r"rules \d+\.\ds .*━.* step 3 of 12 \(rules/MINUTES_USED\)", terminal_screen(terminal))


def test_a_batch_of_one_step_draws_no_bar():
    terminal = FakeTerminal()
    with logs.logging_to("auto", terminal) as handler:
        logs.log.info("publish ...", extra={"event": "stage_started", "stage": "publish"})
        logs.step_progress(1, 1, "outputs/run_record")
        drawn(handler)
    assert "step 1 of 1" not in terminal_screen(terminal) and "━" not in terminal_screen(terminal)


class FakeDuckDB:
    """A connection whose current query is always `percent` done; remembers what was set."""

    def __init__(self, percent: float):
        self.percent, self.statements = percent, []

    def query_progress(self) -> float:
        return self.percent

    def execute(self, sql: str):
        self.statements.append(sql)


@pytest.mark.parametrize(
    "percent, read",
    [
        (50.0, "350.0 kB"),  # the first file (200 kB) done, half of the second (300 kB)
        (100.0, "497.0 kB"),  # a query at 100% is held below the whole file (99%) until the file is done
        (-1.0, "200.0 kB"),  # DuckDB reports nothing yet: the files done
    ],
    ids=["half-read", "held-below-the-file", "no-report"],
)
def test_loading_shows_bytes_read_of_the_total_from_files_done_and_duckdbs_progress(monkeypatch, percent, read):
    monkeypatch.setattr(logs.LoadMeter, "POLL_SECONDS", 0.01)
    terminal, con = FakeTerminal(), FakeDuckDB(percent)
    with logs.logging_to("auto", terminal) as handler:
        logs.log.info("load ...", extra={"event": "stage_started", "stage": "load"})
        meter = logs.LoadMeter(con, [200_000, 300_000, 500_000])
        with meter.reading(200_000):
            pass
        meter.rows_read(40)
        with meter.reading(300_000):
            time.sleep(0.1)
            drawn(handler)
            screen = terminal_screen(terminal)
    line = [row for row in screen.splitlines() if "of 1.0 MB" in row][-1]
    assert re.search(r"load \d+\.\ds .*━.* [\d.]+ kB of 1\.0 MB · [\d,]+ rows/s · ETA (\d+:\d\d|\?)", line), line
    assert f"{read} of 1.0 MB" in line, line
    assert con.statements[0].startswith("SET enable_progress_bar = true") and con.statements[-1].startswith("RESET")


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_off_a_terminal_loading_leaves_duckdb_alone_and_logs_no_progress(log_format):
    output, con = io.StringIO(), FakeDuckDB(50.0)
    with logs.logging_to(log_format, output):
        meter = logs.LoadMeter(con, [1_000])
        with meter.reading(1_000):
            pass
        meter.rows_read(10)
        logs.step_progress(2, 5, "rules/PAST_WINDOW")
    assert con.statements == [] and output.getvalue() == ""


def test_polling_a_real_duckdb_query_sees_it_part_way(monkeypatch):
    """DuckDB reports a query's progress only with its progress bar on: the meter turns it on."""
    import duckdb

    monkeypatch.setattr(logs.LoadMeter, "POLL_SECONDS", 0.02)
    seen = []
    monkeypatch.setattr(logs.LoadMeter, "_show", lambda self, bytes_read: seen.append(bytes_read))
    con = duckdb.connect()
    with logs.logging_to("auto", FakeTerminal()):
        meter = logs.LoadMeter(con, [1_000])
        with meter.reading(1_000):
            con.execute("SELECT count(*) FROM range(400000000) WHERE hash(range) % 7 = 0").fetchall()
    assert any(0 < value < 1_000 for value in seen), seen
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
