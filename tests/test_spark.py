"""The Spark engine (#13) gives the DuckDB engine's outputs, row for row and to the cent.

The same Parquet night runs on both engines, whole: `refund-recon run`'s DuckDB night with its
Parquet exports, and `refund-recon run --engine spark` (load, validate, rules, signals, reconciliation, cases,
decisions, invariants, the night written and committed under --out). Every table the Spark night
writes equals the DuckDB export of the same name, column types and rows, but the columns naming
the run. One SparkSession, local[2], is shared by the module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow
import pyarrow.csv
import pyarrow.parquet
import pytest
from click.testing import CliRunner

from jobs.catalog import CATALOG
from jobs.cli import main
from jobs.config import Settings, load_settings
from jobs.engine.runner import Runner
from jobs.engine.spark import SparkEngine, SparkRunner
from jobs.engine.steps import StepError, discover, for_engine, parse_step, step
from jobs.outputs.lake import SAME_ON_BOTH_ENGINES, Lake
from jobs.params import night_params
from jobs.pipeline import RunResult, run
from jobs.spark_pipeline import _plan_key, run_on_spark, spark_session
from jobs.stages.loading import StructuralError
from jobs.stages.reconciliation import check_invariants
from jobs.stages.rules import OUTPUTS
from jobs.tools.generate import generate

REPO = Path(__file__).resolve().parent.parent
SQL = REPO / "sql"
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
INPUTS = ("purchases", "usage", "refunds", "account_status")
# The rule stage, as jobs/stages/rules.py runs it, after the macros the night sets up first.
RULE_STAGE = ((step("staging/macros"),), (*discover("model"), *CATALOG.rules, *(step(name) for name in OUTPUTS)))
# Columns that name the run or time it: they differ between any two runs.
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "stage_seconds", "step_seconds")


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("refund-recon-tests")
        .config("spark.sql.shuffle.partitions", "1")  # kilobytes of data: one task per shuffle
        .config("spark.sql.adaptive.enabled", "false")  # no re-planning of plans this small
        .config("spark.sql.codegen.wholeStage", "false")  # no Java compiled per query: 15% faster at this size
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sample_night() -> tuple[RunResult, object]:
    """The DuckDB job's run of the sample (CSV), and its settings."""
    settings = load_settings(SAMPLE / "refund-recon.toml")
    return run(settings, SAMPLE, AS_OF, db_path=None), settings


@pytest.fixture(scope="module")
def parquet_nights(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each Parquet night and its settings file: the sample as another system would export it (purchases
    and refunds typed by Arrow's CSV inference: ids as int64, money as double; usage and
    account_status every column as text; two bad rows added), and `generate --scale 0.01 --seed 3 --format parquet`
    (DECIMAL money, TIMESTAMPTZ instants; refunds near midnight in the billing zone, bad rows)."""
    sample = tmp_path_factory.mktemp("sample")
    write_sample_as_another_system(sample)
    generated = tmp_path_factory.mktemp("generated")
    generate(generated, 0.01, 3, file_format="parquet", as_of=AS_OF)
    sample_settings = (SAMPLE / "refund-recon.toml").read_text(encoding="utf-8")
    return {"sample": (sample, config(sample, sample_settings)), "generated": (generated, config(generated, ""))}


def write_sample_as_another_system(folder: Path) -> None:
    """The sample's four exports as Parquet, with two rows it lacks whose quarantined value is an
    instant (printed alike on both engines): a refund processed an hour before it was requested,
    and an account's status given twice (a duplicate key)."""
    with duckdb.connect() as con:
        for stem in ("purchases", "refunds"):
            con.register(stem, pyarrow.csv.read_csv(SAMPLE / f"{stem}.csv"))
        pyarrow.parquet.write_table(con.table("purchases").to_arrow_table(), folder / "purchases.parquet")
        refunds = con.sql(
            "FROM refunds UNION ALL SELECT * REPLACE ('RF-PROCESSED-EARLY' AS refund_id, "
            "'2026-03-04 08:30:00' AS processed_at) FROM refunds WHERE refund_id = 'RF2603040001'"
        )
        pyarrow.parquet.write_table(refunds.to_arrow_table(), folder / "refunds.parquet")
        for stem, again in (("usage", ""), ("account_status", " UNION ALL (FROM rows LIMIT 1)")):
            con.execute(
                f"COPY (WITH rows AS (FROM read_csv(?, all_varchar = true, header = true)) FROM rows{again}) "
                f"TO '{folder / stem}.parquet' (FORMAT parquet)",
                [str(SAMPLE / f"{stem}.csv")],
            )


def config(folder: Path, settings: str) -> Path:
    """The night's settings file, without the HTML report (the same file, and config_hash, on both engines)."""
    path = folder / "refund-recon.toml"
    path.write_text(settings + "\n[outputs]\nreport = false\n", encoding="utf-8")
    return path


def duckdb_outputs(folder: Path, settings: Settings, warehouse: Path) -> Path:
    """The DuckDB engine's night on `folder`, published, and the folder of its Parquet exports."""
    run(settings, folder, AS_OF, db_path=warehouse)
    return warehouse.parent / "exports" / "parquet"


def night_table(folder: Path, table: str) -> pyarrow.Table:
    """One table of a night, `<folder>/<table>/as_of=<AS_OF>/` (one file or Spark's parts),
    without the columns that name the run or time it."""
    found = pyarrow.parquet.read_table(folder / table / f"as_of={AS_OF.isoformat()}")
    return found.drop_columns([name for name in RUN_COLUMNS if name in found.column_names])


def spark_run(spark, night: RunResult, stages):
    """The stages on a SparkEngine over the DuckDB run's typed inputs, checked first."""
    from jobs.engine.spark import SparkEngine, check_steps, spark_steps

    inputs = {name: night.con.table(name).to_arrow_table() for name in INPUTS}
    inputs["rule_catalog"] = CATALOG.rule_table()
    zone = night.runner.params["billing_tz"]  # DuckDB's session zone: the one evidence is written in
    check_steps(spark, stages, night.runner.params, {name: table.schema for name, table in inputs.items()}, zone)
    engine = SparkEngine(spark, zone)
    for name, table in inputs.items():
        engine.write_table(name, table)
    runner = Runner(engine, night.runner.params, inputs)
    for stage in stages:
        runner.run(spark_steps(stage))
    return engine


def columns(table: pyarrow.Table) -> list[tuple[str, str]]:
    """Names and types (a list's element named as either engine names it; an instant's zone is
    only how it prints)."""
    return [(field.name, _type(field.type)) for field in table.schema]


def _type(arrow_type) -> str:
    if pyarrow.types.is_list(arrow_type):
        return _type(arrow_type.value_type) + "[]"
    if pyarrow.types.is_struct(arrow_type):
        return "{" + ", ".join(f"{field.name}: {_type(field.type)}" for field in arrow_type) + "}"
    if pyarrow.types.is_timestamp(arrow_type) and arrow_type.tz:
        return f"timestamp[{arrow_type.unit}, tz]"
    return str(arrow_type)


def rows(table: pyarrow.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=repr)


def differences(expected: pyarrow.Table, actual: pyarrow.Table) -> list[dict]:
    """The rows one side has and the other has not (first few)."""
    left, right = rows(expected), rows(actual)
    return [{"duckdb only": row} for row in left if row not in right][:3] + [
        {"spark only": row} for row in right if row not in left
    ][:3]


@pytest.mark.spark
@pytest.mark.parametrize("night_name", ["sample", "generated"])
def test_a_spark_run_writes_the_duckdb_engines_outputs(spark, parquet_nights, night_name, tmp_path):
    folder, config = parquet_nights[night_name]
    expected = duckdb_outputs(folder, load_settings(config), tmp_path / "duckdb" / "warehouse.duckdb")
    command = ["run", "--engine", "spark", "--input", str(folder), "--as-of", AS_OF.isoformat()]
    ran = CliRunner().invoke(main, [*command, "--out", str(tmp_path / "spark"), "--config", str(config)])
    assert ran.exit_code == 0, ran.output  # the module's session: `run` without --spark-master takes it
    assert f"outputs: {tmp_path / 'spark'}" in ran.output
    for table in SAME_ON_BOTH_ENGINES:
        wanted, written = night_table(expected, table), night_table(tmp_path / "spark", table)
        assert columns(written) == columns(wanted), table
        assert rows(written) == rows(wanted), (table, differences(wanted, written))
    for table in ("validation_errors", "refund_flags", "abuse_signals", "abuse_cases", "pending_refund_decisions"):
        assert night_table(expected, table).num_rows > 0, f"{table}: nothing compared"
    assert not any((tmp_path / "spark" / "_staging").iterdir())
    assert night_table(tmp_path / "spark", "gate_results").num_rows == 0  # written, empty: no gate runs on Spark
    reported = CliRunner().invoke(main, ["report", "--from", str(tmp_path / "spark"), "--as-of", AS_OF.isoformat()])
    assert reported.exit_code == 0, reported.output  # the night's HTML report from the Spark run's outputs
    assert (tmp_path / "spark" / f"report-{AS_OF}.html").stat().st_size > 0


@pytest.mark.spark
def test_csv_is_refused_on_spark_in_one_line_naming_the_file(spark, tmp_path):
    settings = load_settings(SAMPLE / "refund-recon.toml")
    for stem in INPUTS:
        shutil.copy(SAMPLE / f"{stem}.csv", tmp_path / f"{stem}.csv")
    with pytest.raises(StructuralError, match=r"purchases\.csv: the Spark engine reads Parquet only .* convert it"):
        run_on_spark(settings, spark_session(None, None, settings), str(tmp_path), AS_OF, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "refund_flags").exists()


def stage_night(out: Path, run_id: str, night: str, tables: dict[str, str], committing: bool) -> None:
    """A night staged under `out` as a run leaves it: each table's folder holding one file whose
    text names the run, with or without the commit's marker."""
    for table, text in tables.items():
        folder = out / "_staging" / run_id / table / f"as_of={night}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_text(text)
    if committing:
        (out / "_staging" / run_id / "_COMMITTING").touch()


def visible(out: Path) -> dict[str, str]:
    """What a reader sees: each `<table>/as_of=<D>` folder's file text."""
    return {
        f"{path.parent.parent.name}/{path.parent.name}": path.read_text()
        for path in sorted(out.glob("*/as_of=*/part-0.parquet"))
    }


@pytest.mark.spark
def test_a_committed_night_replaces_that_night_only(spark, tmp_path):
    lake = Lake(spark, str(tmp_path))
    for run_id, night in (("run1", "2026-03-30"), ("run2", "2026-03-31"), ("run3", "2026-03-31")):
        stage_night(tmp_path, run_id, night, {"refund_flags": run_id, "runs": run_id}, committing=False)
        lake.commit(str(tmp_path / "_staging" / run_id))
    assert visible(tmp_path) == {
        "refund_flags/as_of=2026-03-30": "run1",
        "refund_flags/as_of=2026-03-31": "run3",
        "runs/as_of=2026-03-30": "run1",
        "runs/as_of=2026-03-31": "run3",
    }
    assert not any((tmp_path / "_staging").iterdir())


@pytest.mark.spark
@pytest.mark.parametrize(
    "committing, renamed_before_the_kill, seen_after_the_next_start",
    [
        (False, 0, {"refund_flags": "old", "runs": "old"}),  # killed while writing: nothing of it shows
        (True, 0, {"refund_flags": "new", "runs": "new"}),  # killed after the marker: rolled forward
        (True, 1, {"refund_flags": "new", "runs": "new"}),  # killed between two renames: finished
    ],
)
def test_the_next_run_finishes_or_removes_a_killed_runs_commit(
    spark, tmp_path, committing, renamed_before_the_kill, seen_after_the_next_start
):
    night = "as_of=2026-03-31"
    stage_night(tmp_path, "old", "2026-03-31", {"refund_flags": "old", "runs": "old"}, committing=False)
    Lake(spark, str(tmp_path)).commit(str(tmp_path / "_staging" / "old"))
    stage_night(tmp_path, "new", "2026-03-31", {"refund_flags": "new", "runs": "new"}, committing=committing)
    for table in ("refund_flags", "runs")[:renamed_before_the_kill]:  # what the killed commit had done
        (tmp_path / table / night).rename(tmp_path / f"{table}-replaced")
        (tmp_path / "_staging" / "new" / table / night).rename(tmp_path / table / night)
    Lake(spark, str(tmp_path)).finish_interrupted_commits()
    assert visible(tmp_path) == {f"{table}/{night}": text for table, text in seen_after_the_next_start.items()}
    assert not any((tmp_path / "_staging").iterdir())


@pytest.mark.spark
def test_case_ids_carry_over_from_the_latest_earlier_night_under_out(spark, tmp_path):
    for night, case_id in (("2026-03-29", "CASE-A"), ("2026-03-30", "CASE-B"), ("2026-04-01", "CASE-LATER")):
        folder = tmp_path / "abuse_cases" / f"as_of={night}"
        folder.mkdir(parents=True)
        pyarrow.parquet.write_table(
            pyarrow.table({"case_id": [case_id], "entity_ids": [["E1", "E2"]]}), folder / "data.parquet"
        )
    engine = SparkEngine(spark, "Asia/Shanghai")
    engine.execute("CREATE OR REPLACE TABLE prior_case_members (case_id VARCHAR, entity_id VARCHAR)", {})
    Lake(spark, str(tmp_path)).read_prior_cases(engine, AS_OF)
    assert rows(engine.read_table("prior_case_members")) == [
        {"case_id": "CASE-B", "entity_id": "E1"},
        {"case_id": "CASE-B", "entity_id": "E2"},
    ]


@pytest.mark.spark
def test_an_invariant_whose_sql_fails_on_spark_is_recorded_as_failed(spark, tmp_path):
    broken = tmp_path / "invariants" / "I99_casts_a_word.sql"
    broken.parent.mkdir()
    broken.write_text(
        '/* @invariant\ncode = "I99"\nname = "casts_a_word"\n*/\n-- Fails at run time (ANSI cast).\n'
        "SELECT CAST('x' AS INTEGER) = 1 AS passed, 'x' AS expected, 'x' AS actual, 'x' AS detail;\n",
        encoding="utf-8",
    )
    runner = SparkRunner(SparkEngine(spark, "Asia/Shanghai"), {"run_id": "r1", "as_of": AS_OF})
    (result,) = check_invariants(runner, (parse_step(broken),))
    assert (result.passed, result.actual) == (False, "an error")
    assert result.detail.startswith("the check could not run: [CAST_INVALID_INPUT]")


@pytest.mark.spark
def test_a_file_that_does_not_carry_over_is_refused_at_start_up_naming_it(spark, sample_night, tmp_path):
    copy = tmp_path / "rules" / "ACCOUNT_SUSPENDED.sql"  # DuckDB's ASOF JOIN, without its override
    copy.parent.mkdir()
    shutil.copy(SQL / "rules" / "ACCOUNT_SUSPENDED.sql", copy)
    night, _ = sample_night
    stages = (RULE_STAGE[0], (*discover("model"), parse_step(copy)))
    with pytest.raises(StepError, match=f"^{copy}: does not carry over to Spark"):
        spark_run(spark, night, stages)


def test_duckdb_never_sees_an_override_and_spark_prefers_it():
    assert all(".spark" not in found.path.name for found in discover("rules"))
    suspended = step("rules/ACCOUNT_SUSPENDED")
    assert for_engine(suspended, "spark").path == SQL / "rules" / "ACCOUNT_SUSPENDED.spark.sql"
    assert for_engine(suspended, "spark").name == suspended.name
    assert for_engine(step("rules/PAST_WINDOW"), "spark") == step("rules/PAST_WINDOW")
    assert for_engine(suspended, "duckdb") == suspended


def _plan_key_of(settings: Settings, as_of: date, run_id: str):
    params = night_params(settings, run_id, as_of, "delivery", "in", datetime(2026, 4, 1, tzinfo=UTC))
    return _plan_key("session", settings, params)


@pytest.mark.parametrize(
    "night, settings, same_plan",
    [
        ("another night and run", Settings(), True),
        ("another refund window (a literal of the same type)", Settings(refund_window_days=7), True),
        ("another billing zone (the SQL is translated for it)", Settings(billing_time_zone="UTC"), False),
        (
            "a signal switched off (one step fewer)",
            replace(Settings(), signals=replace(Settings().signals, disabled=(CATALOG.signals[0].code,))),
            False,
        ),
    ],
)
def test_the_start_up_plan_is_made_again_only_when_what_it_checks_changes(night, settings, same_plan):
    """check_night plans a night once per session and what the plan depends on (docs/spark.md)."""
    first = _plan_key_of(Settings(), date(2026, 3, 31), "run-1")
    assert (_plan_key_of(settings, date(2026, 4, 1), "run-2") == first) is same_plan, night


def test_an_override_declaring_another_header_is_refused(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(SQL / "rules" / "PAST_WINDOW.sql", folder / "PAST_WINDOW.sql")
    text = (SQL / "rules" / "PAST_WINDOW.sql").read_text(encoding="utf-8")
    (folder / "PAST_WINDOW.spark.sql").write_text(
        text.replace('severity = "high"', 'severity = "low"'), encoding="utf-8"
    )
    with pytest.raises(StepError, match=r"PAST_WINDOW\.spark\.sql: an override declares the same header"):
        for_engine(parse_step(folder / "PAST_WINDOW.sql"), "spark")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--out", "lake"], "--out is for --engine spark"),
        (["--spark-master", "local[2]"], "--spark-master is for --engine spark"),
        (["--engine", "spark"], "--engine spark needs --input (the night's Parquet exports) and --out"),
        (["--engine", "spark", "--input", "exports"], "--engine spark needs --input"),
        (["--engine", "spark", "--input", "x", "--out", "y", "--db", "w.duckdb"], "--db is the DuckDB engine's"),
        (
            ["--engine", "spark", "--input", "x", "--out", "y", "--spark-master", "local", "--spark-remote", "sc://h"],
            "give --spark-master or --spark-remote, not both",
        ),
    ],
)
def test_engine_options_that_do_not_fit_are_a_usage_error(options, message):
    ran = CliRunner().invoke(main, ["run", "--as-of", AS_OF.isoformat(), *options])
    assert ran.exit_code == 2
    assert message in ran.output


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory) -> Iterator[str]:
    """A Spark Connect server on local[2] (PySpark's own, sbin/start-connect-server.sh), its URL."""
    pyspark = pytest.importorskip("pyspark")
    home, logs = Path(pyspark.__file__).parent, tmp_path_factory.mktemp("connect")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs)}
    start = [str(home / "sbin" / "start-connect-server.sh"), "--master", "local[2]"]
    subprocess.run(
        [*start, "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.sql.shuffle.partitions=1"],
        env=environment,
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any("Spark Connect server started" in log.read_text() for log in logs.glob("*.out")):
            assert time.monotonic() < deadline, "the Spark Connect server did not start"
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run([str(home / "sbin" / "stop-connect-server.sh")], env=environment, capture_output=True)


@pytest.mark.spark_connect
def test_a_spark_connect_run_writes_the_duckdb_engines_outputs(connect_server, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    write_sample_as_another_system(folder)
    settings = config(folder, (SAMPLE / "refund-recon.toml").read_text(encoding="utf-8"))
    expected = duckdb_outputs(folder, load_settings(settings), tmp_path / "duckdb" / "warehouse.duckdb")
    command = ["run", "--engine", "spark", "--spark-remote", connect_server, "--input", str(folder)]
    options = ["--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "spark"), "--config", str(settings)]
    ran = CliRunner().invoke(main, [*command, *options])
    assert ran.exit_code == 0, ran.output
    for table in SAME_ON_BOTH_ENGINES:
        assert rows(night_table(tmp_path / "spark", table)) == rows(night_table(expected, table)), table
