"""The Spark engine (#13) gives the DuckDB engine's outputs, row for row and to the cent.

The same SQL files run on both engines: the DuckDB job's own run, and the SparkEngine over the
same typed input tables (read from that run's working connection, handed to Spark as Arrow).
Each night runs under two Spark session time zones: the billing zone and UTC (a time-zone
mistake shows only off UTC). One SparkSession, local[2], is shared by the module.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow
import pytest

from jobs.catalog import CATALOG
from jobs.config import load_settings
from jobs.engine.runner import Runner
from jobs.engine.steps import StepError, discover, for_engine, parse_step, step
from jobs.pipeline import RunResult, run
from jobs.stages.rules import OUTPUTS
from jobs.tools.generate import generate

REPO = Path(__file__).resolve().parent.parent
SQL = REPO / "sql"
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
INPUTS = ("purchases", "usage", "refunds", "account_status")
# The rule stage, as jobs/stages/rules.py runs it, after the macros the night sets up first.
RULE_STAGE = ((step("staging/macros"),), (*discover("model"), *CATALOG.rules, *(step(name) for name in OUTPUTS)))
COMPARED = ("refund_flags", "refund_verdicts")
SESSION_ZONES = ("Asia/Shanghai", "UTC")


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("refund-recon-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.fixture(scope="module", params=["sample", "generated"])
def duckdb_night(request, tmp_path_factory) -> RunResult:
    """The DuckDB job's run of the sample, or of a generated scale-0.01 Parquet night."""
    if request.param == "sample":
        return run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, AS_OF, db_path=None)
    folder = tmp_path_factory.mktemp("generated")
    generate(folder, 0.01, 3, file_format="parquet", as_of=AS_OF)
    return run(load_settings(None), folder, AS_OF, db_path=None)


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
    """Names and types (a list's element named as either engine names it)."""
    return [
        (field.name, str(field.type.value_type) + "[]" if pyarrow.types.is_list(field.type) else str(field.type))
        for field in table.schema
    ]


def rows(table: pyarrow.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: (row["refund_id"], row.get("rule_code") or ""))


@pytest.mark.spark
@pytest.mark.parametrize("session_zone", SESSION_ZONES)
def test_the_rule_stage_gives_duckdbs_flags_and_verdicts(spark, duckdb_night, session_zone):
    spark.conf.set("spark.sql.session.timeZone", session_zone)
    engine = spark_run(spark, duckdb_night, RULE_STAGE)
    for name in COMPARED:
        expected, actual = duckdb_night.con.table(name).to_arrow_table(), engine.read_table(name)
        assert columns(actual) == columns(expected), name
        assert rows(actual) == rows(expected), name
        assert len(expected) > 0


@pytest.mark.spark
def test_a_file_that_does_not_carry_over_is_refused_at_start_up_naming_it(spark, tmp_path):
    copy = tmp_path / "rules" / "ACCOUNT_SUSPENDED.sql"  # DuckDB's ASOF JOIN, without its override
    copy.parent.mkdir()
    shutil.copy(SQL / "rules" / "ACCOUNT_SUSPENDED.sql", copy)
    night = run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, AS_OF, db_path=None)
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
