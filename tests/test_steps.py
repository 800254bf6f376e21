"""Declared steps and their runner: every SQL file says what it reads, makes and needs, and
nothing runs that cannot (jobs/engine/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot
from exports import AS_OF, purchase, refund, write_exports
from sqlglot import expressions

from jobs.catalog import CATALOG
from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner, check_plan, plan
from jobs.engine.sqlfiles import SQL_DIR
from jobs.engine.steps import StepError, discover, parse_step
from jobs.pipeline import NIGHT_STEPS, PROVIDED_TABLES

REPO = Path(__file__).resolve().parents[1]
FOLDERS = sorted(path.name for path in SQL_DIR.iterdir() if path.is_dir())
NIGHT_FOLDERS = [folder for folder in FOLDERS if folder != "generate"]  # generate's macros defeat the parser
# Scalar and table macros are functions, not tables: the parse tree shows a table macro as a table.
_NOT_TABLES = {"records_valid_on", "latest_as_of", "query_table", "unnest", "range", "generate_series"}


def write_step(folder: Path, name: str, header: str, sql: str = "SELECT 1 AS x") -> Path:
    path = folder / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"/* @step\n{header}\n*/\n{sql}\n", encoding="utf-8")
    return path


# --- every file of sql/ -------------------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_sql_file_opens_with_a_valid_header(folder):
    steps = discover(folder)
    assert steps and all(step.kind for step in steps)


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in NIGHT_FOLDERS for p in (SQL_DIR / folder).glob("*.sql")),
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
def test_a_header_declares_exactly_the_tables_its_sql_reads_and_makes(path):
    step = parse_step(path)
    if step.template:
        pytest.skip("a template is checked once rendered (history.store_delivery)")
    creates, appends, reads = set(), set(), set()
    for statement in sqlglot.parse(step.sql, read="duckdb"):
        if statement is None:
            continue
        ctes = {cte.alias_or_name for cte in statement.find_all(expressions.CTE)}
        target = statement.this.this if isinstance(statement.this, expressions.Schema) else statement.this
        if isinstance(statement, (expressions.Create, expressions.Insert, expressions.Delete)) and isinstance(
            target, expressions.Table
        ):
            (creates if isinstance(statement, expressions.Create) else appends).add(target.name)
        reads |= {
            table.name
            for table in statement.find_all(expressions.Table)
            if table.name
            if table.name not in ctes and table is not target
        }
    declared_macros = {name for name in step.creates if f"MACRO {name}" in step.sql}
    assert creates == set(step.creates) - declared_macros
    assert appends == set(step.appends)
    own = set(step.creates) | set(step.appends) | declared_macros | _NOT_TABLES | {"memory", "warehouse"}
    parsed_reads = reads - own
    declared_tables = {name for name in step.reads if name not in _macro_names()}
    assert parsed_reads == declared_tables - own


def _macro_names() -> set[str]:
    return {
        name
        for folder in NIGHT_FOLDERS
        for step in discover(folder)
        for name in step.creates
        if f"MACRO {name}" in step.sql
    }


def test_the_night_plans_at_start_up():
    check_plan(
        NIGHT_STEPS,
        PROVIDED_TABLES,
        {name for step in NIGHT_STEPS for name in step.params}
        | {name for step in NIGHT_STEPS for name in step.settings},
    )


# --- what the runner refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "sql", "message"),
    [
        (
            'params = ["as_of"]',
            "SELECT getvariable('as_of') AS day, getvariable('as_off') AS typo",
            "uses parameter as_off without declaring it",
        ),
        (
            'params = ["as_of", "unused"]',
            "SELECT getvariable('as_of') AS day",
            "declares parameter unused but never uses it",
        ),
        ("creates = 3", "SELECT 1", "creates"),
        ('reads = ["a"\n', "SELECT 1", "not valid TOML"),
    ],
)
def test_a_header_that_lies_is_refused_naming_the_file(tmp_path, header, sql, message):
    path = write_step(tmp_path / "sql" / "model", "bad", header, sql)
    with pytest.raises(StepError) as refused:
        parse_step(path)
        pytest.fail("not refused")
    assert message in str(refused.value)
    if isinstance(refused.value, StepError):
        assert str(path) in str(refused.value)


def test_a_file_without_a_header_is_refused(tmp_path):
    path = tmp_path / "sql" / "model" / "plain.sql"
    path.parent.mkdir(parents=True)
    path.write_text("-- just SQL\nSELECT 1\n")
    with pytest.raises(StepError, match="starts with a header"):
        parse_step(path)


def test_a_missing_input_fails_at_start_up_naming_the_file_and_the_table(tmp_path):
    folder = tmp_path / "sql" / "model"
    write_step(folder, "facts", 'creates = ["facts"]\nreads = ["purchases"]', "CREATE TABLE facts AS FROM purchases")
    write_step(folder, "flags", 'creates = ["flags"]\nreads = ["fact"]', "CREATE TABLE flags AS FROM fact")
    with pytest.raises(StepError) as refused:
        plan(discover("model", tmp_path / "sql"), provided={"purchases"})
    assert "flags.sql: reads fact, which no step creates" in str(refused.value)


def test_a_cycle_fails_at_start_up_naming_the_files(tmp_path):
    folder = tmp_path / "sql" / "model"
    write_step(folder, "a", 'creates = ["a"]\nreads = ["b"]', "CREATE TABLE a AS FROM b")
    write_step(folder, "b", 'creates = ["b"]\nreads = ["a"]', "CREATE TABLE b AS FROM a")
    with pytest.raises(StepError, match=r"cycle: .*a\.sql -> .*b\.sql|cycle: .*b\.sql -> .*a\.sql"):
        plan(discover("model", tmp_path / "sql"))


def test_a_parameter_the_run_does_not_set_fails_at_start_up(tmp_path):
    write_step(
        tmp_path / "sql" / "model",
        "window",
        'creates = ["w"]\nparams = ["refund_window_dayz"]',
        "CREATE TABLE w AS SELECT getvariable('refund_window_dayz') AS days",
    )
    with pytest.raises(StepError, match=r"window\.sql: parameter refund_window_dayz is not set by the run"):
        check_plan(discover("model", tmp_path / "sql"), (), {"refund_window_days"})


def test_steps_run_in_the_order_their_reads_demand_whatever_their_names(tmp_path):
    folder = tmp_path / "sql" / "model"
    write_step(folder, "a_last", 'creates = ["c"]\nreads = ["b"]', "CREATE TABLE c AS SELECT x + 1 AS x FROM b")
    write_step(folder, "b_middle", 'creates = ["b"]\nreads = ["a"]', "CREATE TABLE b AS SELECT x * 10 AS x FROM a")
    write_step(
        folder, "c_first", 'creates = ["a"]\nparams = ["start"]', "CREATE TABLE a AS SELECT getvariable('start') AS x"
    )
    con = duckdb.connect()
    runner = Runner(DuckDBEngine(con), {"start": 4})
    runner.run(discover("model", tmp_path / "sql"))
    assert con.execute("SELECT x FROM c").fetchone() == (41,)
    assert list(runner.step_seconds) == ["model/c_first", "model/b_middle", "model/a_last"]


def test_a_step_binds_only_its_declared_parameters(tmp_path):
    write_step(
        tmp_path / "sql" / "model",
        "day",
        'creates = ["d"]\nparams = ["as_of"]',
        "CREATE TABLE d AS SELECT getvariable('as_of') AS day",
    )
    con = duckdb.connect()
    Runner(DuckDBEngine(con), {"as_of": AS_OF, "secret": "x"}).run(discover("model", tmp_path / "sql"))
    assert con.execute("SELECT day, getvariable('secret') FROM d").fetchone() == (AS_OF, None)


def test_a_policy_rule_cannot_read_the_hits_of_its_own_phase(tmp_path):
    path = tmp_path / "sql" / "rules" / "LOOKS_AT_OTHERS.sql"
    path.parent.mkdir(parents=True)
    path.write_text(
        '/* @rule\ncode = "LOOKS_AT_OTHERS"\nposition = 1\ncategory = "policy"\nseverity = "low"\n'
        'whole_refund_at_risk = false\nsummary = "x"\nreads = ["rule_hits"]\n*/\n'
        "SELECT refund_id, 0 AS amount_at_risk, {} AS evidence FROM rule_hits\n"
    )
    with pytest.raises(StepError, match="files of its phase are still filling"):
        plan(discover("rules", tmp_path / "sql"))


# --- one new file adds a rule everywhere --------------------------------------------------

NEW_RULE = """/* @rule
code = "ROUND_AMOUNT"
position = 11
category = "reconciliation"
severity = "low"
whole_refund_at_risk = false
summary = "a refund of a round thousand"
reads = ["refund_facts"]
*/
-- Not a policy sentence: a test rule. "Refunds of round thousands deserve a look."
-- Fires when refund_amount is a positive multiple of 1000.
SELECT refund_id, refund_amount AS amount_at_risk, {'refund_amount': refund_amount} AS evidence
FROM refund_facts
WHERE refund_amount > 0 AND refund_amount % 1000 = 0
"""


def test_one_new_sql_file_adds_a_rule_to_every_output(tmp_path):
    sql_copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_copy)
    (sql_copy / "rules" / "ROUND_AMOUNT.sql").write_text(NEW_RULE, encoding="utf-8")
    folder = write_exports(
        tmp_path / "in",
        purchases=[
            purchase(order_id="O1", paid_cash_credit="2000.00", list_price="2000.00"),
            purchase(order_id="O2", account_id="A2", entity_id="E2", paid_cash_credit="1999.00", list_price="1999.00"),
        ],
        refunds=[
            refund(refund_id="R1", order_id="O1", refund_cash_credit="2000.00", refund_amount="2000.00"),
            refund(refund_id="R2", order_id="O2", refund_cash_credit="1999.00", refund_amount="1999.00"),
        ],
    )
    db = tmp_path / "out" / "recon.duckdb"
    job = [str(Path(sys.executable).parent / "refund-recon")]
    env = os.environ | {"REFUND_RECON_SQL_DIR": str(sql_copy)}
    completed = subprocess.run(
        [*job, "run", "--input", str(folder), "--db", str(db), "--as-of", str(AS_OF)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT refund_id FROM refund_flags WHERE rule_code = 'ROUND_AMOUNT'").fetchall() == [("R1",)]
    assert con.execute("SELECT position, category FROM rule_catalog WHERE rule_code = 'ROUND_AMOUNT'").fetchone() == (
        11,
        "reconciliation",
    )
    assert con.execute("SELECT rule_codes FROM refund_verdicts WHERE refund_id = 'R1'").fetchone() == (
        ["ROUND_AMOUNT"],
    )
    assert con.execute(
        "SELECT CAST(sum(amount_at_risk) AS VARCHAR) FROM daily_reconciliation_by_rule WHERE rule_code = 'ROUND_AMOUNT'"
    ).fetchone() == ("2000.00",)
    assert con.execute("SELECT CAST(sum(at_risk_round_amount) AS VARCHAR) FROM daily_reconciliation").fetchone() == (
        "2000.00",
    )
    assert con.execute("SELECT flag_counts['ROUND_AMOUNT'] FROM runs").fetchone() == (1,)
    assert con.execute("SELECT bool_and(passed) FROM invariant_results").fetchone() == (True,)
    dictionary = subprocess.run([*job, "dictionary"], capture_output=True, text=True, env=env)
    assert "ROUND_AMOUNT" in dictionary.stdout


def test_docs_rules_lists_every_rule_of_the_catalogue_with_its_category_and_severity():
    docs = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    rows = {
        cells[1].strip("` "): (cells[2].strip(), cells[3].strip())
        for cells in (line.split("|") for line in docs.splitlines())
        if len(cells) > 4 and "`" in cells[1] and cells[1].strip("` ").isupper()
    }
    assert rows == {rule.code: (rule.meta["category"], rule.meta["severity"]) for rule in CATALOG.rules}


def test_docs_signals_has_a_section_per_signal_of_the_catalogue():
    docs = (REPO / "docs" / "signals.md").read_text(encoding="utf-8")
    assert [signal.code for signal in CATALOG.signals if signal.code not in docs] == []


def test_a_broken_sql_copy_stops_the_run_at_start_up_with_exit_1_naming_the_file(tmp_path):
    sql_copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_copy)
    rule = sql_copy / "rules" / "PAST_WINDOW.sql"
    rule.write_text(
        rule.read_text().replace("getvariable('refund_window_days') - 1", "getvariable('refund_window_dayz') - 1"),
        encoding="utf-8",
    )
    folder = write_exports(tmp_path / "in", purchases=[purchase()], refunds=[refund()])
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "refund-recon"),
            "run",
            "--input",
            str(folder),
            "--db",
            str(tmp_path / "recon.duckdb"),
            "--as-of",
            str(AS_OF),
        ],
        env=os.environ | {"REFUND_RECON_SQL_DIR": str(sql_copy)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1
    assert "PAST_WINDOW.sql: uses parameter refund_window_dayz without declaring it" in completed.stderr
    assert "Traceback" not in completed.stderr and not (tmp_path / "recon.duckdb").exists()
