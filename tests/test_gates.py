"""Freshness and volume gates (issue #4, docs/gates.md): each gate at its edges, the earlier
nights the volume median counts, warn vs fail, and the [gates] settings."""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner
from exports import purchase, refund, usage, write_exports

from jobs.cli import main
from jobs.config import GateSettings, Settings, load_settings
from jobs.engine.engine import DuckDBEngine, warehouse_has
from jobs.engine.runner import Runner
from jobs.pipeline import run
from jobs.stages.gates import GateFailed, check_gates, gate_params

DOCS = Path(__file__).resolve().parent.parent / "docs" / "gates.md"
TZ = ZoneInfo("Asia/Shanghai")
AS_OF = date(2026, 3, 31)
END_OF_AS_OF = datetime(2026, 4, 1, tzinfo=TZ)
TIME_COLUMNS = {
    "purchases": "purchased_at",
    "usage": "started_at",
    "refunds": "requested_at",
    "account_status": "effective_at",
}
ONE_HOUR_AGO = {stem: END_OF_AS_OF - timedelta(hours=1) for stem in TIME_COLUMNS}
TONIGHT_ROWS = {stem: 100 for stem in TIME_COLUMNS}


def night(newest=ONE_HOUR_AGO, rows_in=TONIGHT_ROWS, runs=None) -> duckdb.DuckDBPyConnection:
    """A connection shaped like a run's after loading on AS_OF.

    `newest`: {stem: the newest record's timestamp} (a stem left out has no record);
    `rows_in`: {stem: tonight's visible rows} (left out: no file read);
    `runs`: None for no attached warehouse, else warehouse.runs as [(as_of, started_at, {stem: rows_in})].
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    for stem, column in TIME_COLUMNS.items():
        con.execute(f"CREATE TABLE {stem} ({column} TIMESTAMPTZ)")
        if stem in newest:
            con.execute(f"INSERT INTO {stem} VALUES (? - INTERVAL 5 DAY), (?)", [newest[stem], newest[stem]])
    con.execute("CREATE TABLE run_inputs (source VARCHAR, rows_in BIGINT)")
    for stem, rows in rows_in.items():
        con.execute("INSERT INTO run_inputs (source, rows_in) VALUES (?, ?)", [stem, rows])
    if runs is not None:
        con.execute("ATTACH ':memory:' AS warehouse")
        con.execute(
            "CREATE TABLE warehouse.runs (run_id VARCHAR, as_of DATE, started_at TIMESTAMPTZ, "
            "input_files STRUCT(source VARCHAR, rows_in BIGINT)[])"
        )
        for number, (as_of, started_at, files) in enumerate(runs):
            con.execute(
                "INSERT INTO warehouse.runs VALUES (?, ?, ?, ?)",
                [
                    f"run{number}",
                    as_of,
                    started_at,
                    [{"source": stem, "rows_in": rows} for stem, rows in files.items()],
                ],
            )
    return con


def check(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """The gates stage on `con`, with the run's parameters for AS_OF."""
    params = {"run_id": "tonight", "as_of": AS_OF, "as_of_end": END_OF_AS_OF, **gate_params(settings)}
    runner = Runner(DuckDBEngine(con), params, provided=(*TIME_COLUMNS, "run_inputs"))
    return check_gates(runner, settings, earlier_runs=warehouse_has(con, "runs"))


def settings(**gates) -> Settings:
    return Settings(gates=GateSettings(**gates))


def result(con, gate: str, source: str) -> tuple:
    """(passed, observed, expected, message) of one gate."""
    return con.execute(
        "SELECT passed, observed, expected, message FROM gate_results WHERE gate = ? AND source = ?", [gate, source]
    ).fetchone()


def nights_before(count: int, rows: int, stem: str = "usage") -> list:
    """One delivery of `stem` with `rows` visible rows on each of the `count` nights before AS_OF."""
    return [
        (AS_OF - timedelta(days=back), END_OF_AS_OF - timedelta(days=back - 1), {stem: rows})
        for back in range(1, count + 1)
    ]


# --- freshness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age, passed",
    [
        (timedelta(hours=24), True),
        (timedelta(hours=24, seconds=1), False),
    ],
    ids=["exactly-max-age-passes", "one-second-over-fires"],
)
def test_freshness_fires_only_past_the_max_age(age, passed):
    con = night(newest=ONE_HOUR_AGO | {"usage": END_OF_AS_OF - age})
    check(con, settings())
    assert result(con, "freshness", "usage")[0] is passed


def test_freshness_message_names_the_newest_record_its_age_and_the_key():
    con = night(newest=ONE_HOUR_AGO | {"purchases": datetime(2026, 3, 29, 23, 0, tzinfo=TZ)})
    check(con, settings())
    passed, observed, expected, message = result(con, "freshness", "purchases")
    assert passed is False
    assert observed == "purchased_at 2026-03-29 23:00:00+08 (49h00m00s old)"
    assert "48h" in expected
    assert "49h00m00s" in message and "gates.freshness_max_age_hours.purchases" in message


def test_an_empty_export_is_stale():
    con = night(newest={stem: at for stem, at in ONE_HOUR_AGO.items() if stem != "refunds"})
    check(con, settings())
    passed, observed, _, message = result(con, "freshness", "refunds")
    assert (passed, observed) == (False, "no record")
    assert "no record at all" in message


def test_freshness_turned_off_makes_no_judgement():
    con = night(newest={})
    hours = GateSettings().freshness_max_age_hours | {"usage": None}
    check(con, settings(freshness_max_age_hours=hours))
    assert result(con, "freshness", "usage")[0] is None
    assert result(con, "freshness", "purchases")[0] is False


# --- volume ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factor, median, tonight, passed",
    [
        (3.0, 300, 900, True),
        (3.0, 300, 901, False),
        (3.0, 300, 100, True),
        (3.0, 300, 99, False),
        (1.15, 100, 115, True),
        (1.15, 100, 116, False),
    ],
    ids=[
        "exactly-factor-above",
        "just-over-factor",
        "exactly-factor-below",
        "just-under-factor",
        "exactly-fractional-factor",
        "just-over-fractional-factor",
    ],
)
def test_volume_fires_only_beyond_the_factor(factor, median, tonight, passed):
    con = night(rows_in=TONIGHT_ROWS | {"usage": tonight}, runs=nights_before(5, median))
    check(con, settings(volume_max_factor=factor))
    assert result(con, "volume", "usage")[0] is passed


def test_volume_compares_with_the_median_not_the_mean():
    runs = [
        (AS_OF - timedelta(days=back), END_OF_AS_OF, {"usage": rows})
        for back, rows in enumerate([100, 100, 100, 100, 100_000], start=1)
    ]
    con = night(runs=runs)
    check(con, settings())
    passed, _, expected, _ = result(con, "volume", "usage")
    assert passed is True
    assert "median 100 of 5 earlier nights" in expected


@pytest.mark.parametrize("nights, judged", [(4, False), (5, True)], ids=["too-few-nights", "just-enough"])
def test_volume_needs_the_minimum_of_earlier_nights(nights, judged):
    con = night(rows_in=TONIGHT_ROWS | {"usage": 10_000}, runs=nights_before(nights, 100))
    check(con, settings(volume_min_nights=5))
    passed, _, _, message = result(con, "volume", "usage")
    assert passed is (False if judged else None)
    assert ("gates.volume_min_nights" in message) is not judged


def test_reruns_of_one_as_of_count_as_one_night():
    yesterday = AS_OF - timedelta(days=1)
    runs = [(yesterday, END_OF_AS_OF + timedelta(hours=hour), {"usage": 100}) for hour in range(3)]
    con = night(runs=runs + nights_before(2, 100)[1:])
    check(con, settings(volume_min_nights=3))
    assert result(con, "volume", "usage")[0] is None
    assert "2 earlier nights delivered it" in result(con, "volume", "usage")[3]


def test_the_latest_delivery_of_an_as_of_is_the_one_counted():
    yesterday = AS_OF - timedelta(days=1)
    later = END_OF_AS_OF + timedelta(hours=5)
    runs = [
        (yesterday, later, {"usage": 100}),
        (yesterday, END_OF_AS_OF, {"usage": 1000}),
        (yesterday, later + timedelta(hours=1), {}),
    ]  # a replay after it reads no file
    con = night(runs=runs)
    check(con, settings(volume_min_nights=1))
    assert result(con, "volume", "usage")[0] is True


@pytest.mark.parametrize(
    "ignored_as_of",
    [AS_OF, AS_OF + timedelta(days=1), AS_OF - timedelta(days=15)],
    ids=["tonight", "later", "before-the-trailing-nights"],
)
def test_volume_reads_only_the_trailing_nights_before_tonight(ignored_as_of):
    runs = [*nights_before(1, 100), (ignored_as_of, END_OF_AS_OF, {"usage": 10000})]
    con = night(runs=runs)
    check(con, settings(volume_min_nights=1, volume_trailing_nights=14))
    assert result(con, "volume", "usage")[0] is True
    assert "median 100 of 1 earlier night," in result(con, "volume", "usage")[2]


def test_the_oldest_trailing_night_counts():
    con = night(runs=[(AS_OF - timedelta(days=14), END_OF_AS_OF, {"usage": 10_000})])
    check(con, settings(volume_min_nights=1, volume_trailing_nights=14))
    assert result(con, "volume", "usage")[0] is False


@pytest.mark.parametrize("runs", [None, "no runs table"], ids=["no-warehouse", "warehouse-without-runs"])
def test_volume_without_history_makes_no_judgement(runs):
    con = night(runs=None)
    if runs:
        con.execute("ATTACH ':memory:' AS warehouse")
    check(con, settings(volume_min_nights=1))
    assert [row[0] for row in con.execute("SELECT passed FROM gate_results WHERE gate = 'volume'").fetchall()] == [
        None
    ] * 4


def test_a_replay_reads_no_file_so_volume_is_not_judged():
    con = night(rows_in={}, runs=nights_before(5, 100))
    check(con, settings())
    passed, observed, _, _ = result(con, "volume", "usage")
    assert (passed, observed) == (None, "no file read")


def test_volume_reads_the_history_a_real_warehouse_keeps(tmp_path):
    """runs.input_files as the pipeline writes it: two earlier nights of 1 usage row, tonight 4."""
    quiet = write_exports(tmp_path / "quiet", purchases=[purchase()], usage=[usage()], refunds=[refund()])
    busy = write_exports(
        tmp_path / "busy", purchases=[purchase()], refunds=[refund()], usage=[usage(usage_id=f"U{n}") for n in range(4)]
    )
    db_path = tmp_path / "recon.duckdb"
    plain = replace(Settings(), write_report=False, write_exports=False)
    for as_of in (AS_OF - timedelta(days=2), AS_OF - timedelta(days=1)):
        run(plain, quiet, as_of, db_path)
    con = run(plain, busy, AS_OF, None, publish_results=False).con
    con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(db_path)])
    check(con, replace(plain, gates=GateSettings(volume_min_nights=2)))
    passed, observed, expected, _ = result(con, "volume", "usage")
    assert (passed, observed) == (False, "4 rows")
    assert "median 1 of 2 earlier nights" in expected


# --- warn or fail ------------------------------------------------------------------------------

STALE_USAGE = ONE_HOUR_AGO | {"usage": END_OF_AS_OF - timedelta(days=3)}


def test_warn_logs_each_failed_gate_and_returns_its_message(caplog):
    con = night(newest=STALE_USAGE)
    with caplog.at_level(logging.WARNING, logger="refund_recon"):
        messages = check(con, settings())
    assert len(messages) == 1 and messages[0].startswith("Freshness of usage:")
    [record] = [record for record in caplog.records if getattr(record, "event", None) == "gate_warning"]
    assert (record.gate, record.source, record.getMessage()) == ("freshness", "usage", messages[0])


def test_fail_raises_naming_the_failed_gates():
    con = night(newest=STALE_USAGE)
    with pytest.raises(GateFailed, match="freshness of usage"):
        check(con, settings(on_failure="fail"))


def test_fail_with_every_gate_passing_lets_the_run_go_on():
    assert check(night(), settings(on_failure="fail")) == []


# --- settings ----------------------------------------------------------------------------------


def test_gates_settings_override_only_the_keys_given(tmp_path):
    path = tmp_path / "refund-recon.toml"
    path.write_text(
        '[gates]\non_failure = "fail"\n[gates.freshness_max_age_hours]\nusage = 6\nrefunds = false\n', encoding="utf-8"
    )
    gates = load_settings(path).gates
    assert gates.on_failure == "fail"
    assert gates.freshness_max_age_hours == {"purchases": 48, "usage": 6, "refunds": None, "account_status": None}
    assert gates.volume_max_factor == 3.0


def test_the_settings_shown_in_docs_are_the_defaults(tmp_path):
    [block] = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    path = tmp_path / "refund-recon.toml"
    path.write_text(block, encoding="utf-8")
    assert set(tomllib.loads(block)["gates"]) == {field.name for field in fields(GateSettings)}
    assert load_settings(path).gates == GateSettings()


@pytest.mark.parametrize(
    "toml, key",
    [
        ('on_failure = "stop"\n', "gates.on_failure"),
        ("volume_max_factor = 1\n", "gates.volume_max_factor"),
        ("volume_trailing_nights = 0\n", "gates.volume_trailing_nights"),
        ("volume_trailing_nights = 4\n", "gates.volume_min_nights"),
        ("volume_min_nights = 2.5\n", "gates.volume_min_nights"),
        ("freshness_max_age_hours = 24\n", "gates.freshness_max_age_hours"),
        ("[gates.freshness_max_age_hours]\nusage = 0\n", "gates.freshness_max_age_hours.usage"),
        ("[gates.freshness_max_age_hours]\nusage = true\n", "gates.freshness_max_age_hours.usage"),
        ("[gates.freshness_max_age_hours]\ninvoices = 24\n", "gates.freshness_max_age_hours.invoices"),
        ("max_age = 24\n", "gates.max_age"),
    ],
    ids=[
        "on-failure",
        "factor-one",
        "no-nights",
        "min-over-trailing",
        "fractional-nights",
        "age-not-a-table",
        "age-zero",
        "age-true",
        "unknown-export",
        "unknown-key",
    ],
)
def test_a_bad_gates_value_exits_2_naming_the_key(tmp_path, toml, key):
    path = tmp_path / "refund-recon.toml"
    path.write_text("[gates]\n" + toml, encoding="utf-8")
    outcome = CliRunner().invoke(main, ["validate", "--input", str(tmp_path), "--config", str(path)])
    assert outcome.exit_code == 2
    assert f"'{key}'" in outcome.output
