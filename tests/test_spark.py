"""The Spark engine (#13) gives the DuckDB engine's outputs, row for row and to the cent.

The same SQL files run on both engines: the DuckDB job's own run, and the night's stages after
validation (rules, signals, reconciliation, cases, decisions, invariants) on a SparkRunner over
the tables that run validated and merged (read from its working connection, handed to Spark as
Arrow). Each night runs under two Spark session time zones: the billing zone and UTC (a time-zone
mistake shows only off UTC). One SparkSession, local[2], is shared by the module.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pyarrow
import pytest

from jobs.catalog import CATALOG
from jobs.config import load_settings
from jobs.engine.runner import Runner, _collected
from jobs.engine.steps import StepError, discover, for_engine, parse_step, step
from jobs.outputs.dictionary import TABLES
from jobs.pipeline import RunResult, run
from jobs.stages.abuse import LINKING, build_cases, detect_abuse
from jobs.stages.decisions import DECISION_STEP, decide_pending_refunds
from jobs.stages.reconciliation import INVARIANTS, reconcile
from jobs.stages.rules import OUTPUTS, evaluate
from jobs.tools.generate import generate

REPO = Path(__file__).resolve().parent.parent
SQL = REPO / "sql"
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
INPUTS = ("purchases", "usage", "refunds", "account_status")
# The rule stage, as jobs/stages/rules.py runs it, after the macros the night sets up first.
RULE_STAGE = ((step("staging/macros"),), (*discover("model"), *CATALOG.rules, *(step(name) for name in OUTPUTS)))
# Each night under one Spark session zone (both zones, both nights, in `make test`'s 2 minutes):
# the generated night, whose refunds fall near midnight, off UTC (where a from_utc_timestamp
# mistake shows), the sample under UTC (where one relying on the session being the billing zone
# shows). REFUND_RECON_SPARK_ALL_ZONES=1 runs every night under every zone.
SESSION_ZONES = ("Asia/Shanghai", "UTC")
NIGHTS_AND_ZONES = (
    [(night, zone) for night in ("sample", "generated") for zone in SESSION_ZONES]
    if os.environ.get("REFUND_RECON_SPARK_ALL_ZONES")
    else [("sample", "UTC"), ("generated", "Asia/Shanghai")]
)
# Each output's columns and their types as DuckDB names them (the data dictionary's, tested there).
DICTIONARY = {table.name: [(column.name, column.type) for column in table.columns] for table in TABLES}
# Made on Spark before the stages: the macros, and the standing list entries (a view of the events).
SPARK_SETUP = ("staging/macros", "staging/masking", "decisions/list_entries")
# The night's outputs after validation, compared row for row (invariant_results: its own columns).
NIGHT_OUTPUTS = (
    "validation_errors",
    "refund_flags",
    "refund_verdicts",
    "entity_groups",
    "abuse_signals",
    "abuse_cases",
    "daily_reconciliation",
    "daily_reconciliation_by_rule",
    "pending_refund_decisions",
    "invariant_results",
)


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("refund-recon-tests")
        .config("spark.sql.shuffle.partitions", "1")  # kilobytes of data: one task per shuffle
        .config("spark.sql.adaptive.enabled", "false")  # no re-planning of plans this small
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sample_night() -> tuple[RunResult, object]:
    """The DuckDB job's run of the sample, and its settings."""
    settings = load_settings(SAMPLE / "refund-recon.toml")
    return run(settings, SAMPLE, AS_OF, db_path=None), settings


@pytest.fixture(scope="module")
def generated_night(tmp_path_factory) -> tuple[RunResult, object]:
    """The DuckDB job's run of a generated scale-0.01 Parquet night, and its settings."""
    folder = tmp_path_factory.mktemp("generated")
    generate(folder, 0.01, 3, file_format="parquet", as_of=AS_OF)
    return run(load_settings(None), folder, AS_OF, db_path=None), load_settings(None)


def night_inputs() -> tuple[str, ...]:
    """What the Spark stages read that no step of theirs makes: the validated and merged exports,
    the quarantine, the run's inputs, the stored records and the reviewers' state."""
    steps = [
        *(step(name) for name in (*SPARK_SETUP, "outputs/validation_errors", *OUTPUTS, *LINKING, DECISION_STEP)),
        *discover("model"),
        *CATALOG.rules,
        *CATALOG.signals,
        step("abuse/40_abuse_cases"),
        *discover("reconciliation"),
        *INVARIANTS,
    ]
    made = {name for found in steps for name in (*found.creates, *found.appends, *_collected(found))}
    read = {name for found in steps for name in found.reads}
    return tuple(sorted(read - made - {"rule_catalog", "signal_catalog"}))


def spark_night(spark, night: RunResult, settings, analyse_only: bool = False):
    """The night's stages after validation on Spark, as the DuckDB pipeline runs them (or, with
    `analyse_only`, every step planned by Spark's analyser and none run: the start-up check)."""
    from jobs.engine.spark import SparkEngine, SparkRunner

    engine = SparkEngine(spark, night.runner.params["billing_tz"], analyse_only=analyse_only)
    provided = night_inputs()
    for name in provided:
        table = night.con.table(name).to_arrow_table()
        engine.write_table(name, table if table.num_rows else table.schema.empty_table())
    runner = SparkRunner(engine, night.runner.params, provided)
    runner.run(tuple(step(name) for name in SPARK_SETUP))
    runner.run((step("outputs/validation_errors"),))
    evaluate(runner)
    detect_abuse(runner, settings.signals)
    reconcile(runner)
    build_cases(runner)
    decide_pending_refunds(runner)
    return engine


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
@pytest.mark.parametrize("night_name, session_zone", NIGHTS_AND_ZONES)
def test_the_night_after_validation_gives_duckdbs_outputs(spark, request, night_name, session_zone):
    night, settings = request.getfixturevalue(f"{night_name}_night")
    spark.conf.set("spark.sql.session.timeZone", session_zone)
    engine = spark_night(spark, night, settings)
    for name in NIGHT_OUTPUTS:
        expected, actual = night.con.table(name).to_arrow_table(), engine.read_typed(name, DICTIONARY[name])
        assert columns(actual) == columns(expected), name
        assert rows(actual) == rows(expected), (name, differences(expected, actual))
    for name in ("refund_flags", "abuse_signals", "abuse_cases", "daily_reconciliation", "pending_refund_decisions"):
        assert night.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] > 0, f"{name}: nothing compared"


@pytest.mark.spark
def test_every_step_of_the_night_carries_over_to_spark(spark, sample_night):
    night, settings = sample_night
    spark_night(spark, night, settings, analyse_only=True)  # raises StepError naming a file that does not


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
