"""The data dictionary matches the warehouse a run publishes, and docs/data-dictionary.md matches
the dictionary; the stable views and the example queries of docs/analysts.md work on the sample.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import load_settings
from jobs.outputs.dictionary import BY_NAME, TABLES, markdown
from jobs.pipeline import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
REGENERATE = "regenerate it: refund-recon dictionary --out docs/data-dictionary.md"


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    """The sample night published twice (two nights), without the report or the exports."""
    settings = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
    db_path = tmp_path_factory.mktemp("dictionary") / "recon.duckdb"
    run(settings, SAMPLE, date(2026, 3, 30), db_path)
    run(settings, SAMPLE, AS_OF, db_path)
    return db_path


def published(db_path: Path) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """{name: (kind, [(column, type), ...])} for every table and view of the warehouse."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        kinds = dict(
            con.execute(
                "SELECT table_name, 'table' FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal "
                "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
            ).fetchall()
        )
        columns = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
            "AND NOT internal ORDER BY table_name, column_index"
        ).fetchall()
    result = {name: (kind, []) for name, kind in kinds.items()}
    for table, column, kind in columns:
        result[table][1].append((column, kind))
    return result


def extra_columns(db_path: Path) -> dict[str, list[str]]:
    """The extra columns of each export in the latest run (kept in its loaded table)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT file.source, file.extra_columns FROM (SELECT unnest(input_files) AS file "
            "FROM (SELECT input_files FROM runs ORDER BY finished_at DESC LIMIT 1))"
        ).fetchall()
    return {source: list(columns) for source, columns in rows}


def test_every_published_table_and_view_is_documented(sample_warehouse):
    undocumented = sorted(set(published(sample_warehouse)) - set(BY_NAME))
    assert undocumented == [], f"document these in jobs/outputs/dictionary.py, then {REGENERATE}"


def test_every_documented_table_and_view_is_published(sample_warehouse):
    missing = sorted(set(BY_NAME) - set(published(sample_warehouse)))
    assert missing == [], "documented in jobs/outputs/dictionary.py but not in the warehouse"


def test_every_column_is_documented_with_its_type_in_warehouse_order(sample_warehouse):
    problems = []
    for name, (kind, columns) in sorted(published(sample_warehouse).items()):
        table = BY_NAME[name]
        if table.kind != kind:
            problems.append(f"{name}: documented as a {table.kind}, published as a {kind}")
        documented = [(column.name, column.type) for column in table.columns]
        if columns != documented:
            problems.append(f"{name}: published {columns}, documented {documented}")
    assert problems == [], "\n".join(problems)


def test_the_sample_brings_an_extra_column_and_it_is_kept_with_its_record(sample_warehouse):
    # refunds.csv of the sample has a `note` column: kept, by name, in each refund's _extra_columns.
    assert extra_columns(sample_warehouse)["refunds"] == ["note"]
    with duckdb.connect(str(sample_warehouse), read_only=True) as con:
        notes = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE map_contains(_extra_columns, 'note')) FROM refunds"
        ).fetchone()
    assert notes[0] > 0 and notes[0] == notes[1]


def test_every_table_has_a_grain_and_every_column_a_meaning():
    for table in TABLES:
        assert table.grain and table.meaning and table.columns, table.name
        names = [column.name for column in table.columns]
        assert len(names) == len(set(names)), f"{table.name}: a column documented twice"
        for column in table.columns:
            assert column.meaning.strip() and column.type.strip(), f"{table.name}.{column.name}"


def test_the_markdown_file_is_what_the_generator_writes():
    text = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert text == markdown(), f"docs/data-dictionary.md is stale; {REGENERATE}"


def test_the_markdown_names_every_table_and_column():
    text = markdown()
    for table in TABLES:
        assert f"\n### {table.name}\n" in text
        section = text.split(f"\n### {table.name}\n", 1)[1].split("\n### ", 1)[0]
        for column in table.columns:
            assert f"| `{column.name}` | `" in section, f"{table.name}.{column.name}"


def test_the_dictionary_command_prints_and_writes_the_markdown(tmp_path):
    printed = CliRunner().invoke(main, ["dictionary"])
    assert printed.exit_code == 0 and printed.stdout == markdown()
    out = tmp_path / "dictionary.md"
    written = CliRunner().invoke(main, ["dictionary", "--out", str(out)])
    assert written.exit_code == 0
    assert out.read_text(encoding="utf-8") == markdown()


# --- the views and the example queries --------------------------------------------------------


def query(db_path: Path, sql: str, params=()):
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_money_at_risk_by_rule_month_adds_up_to_the_flags(sample_warehouse):
    by_view = query(
        sample_warehouse,
        "SELECT rule_code, currency, sum(flag_count), sum(amount_at_risk), "
        "sum(amount_at_risk_paid + amount_at_risk_pending + amount_at_risk_rejected) "
        "FROM money_at_risk_by_rule_month GROUP BY ALL ORDER BY ALL",
    )
    by_flags = query(
        sample_warehouse,
        "SELECT flag.rule_code, verdict.currency, count(*), sum(flag.amount_at_risk), "
        "sum(flag.amount_at_risk) FROM refund_flags AS flag "
        "JOIN refund_verdicts AS verdict USING (refund_id) GROUP BY ALL ORDER BY ALL",
    )
    assert by_view == by_flags and by_view
    months = query(sample_warehouse, "SELECT DISTINCT request_month FROM money_at_risk_by_rule_month ORDER BY 1")
    assert all(month.day == 1 for (month,) in months)


def test_entity_refund_history_lists_each_refund_of_the_entity_once(sample_warehouse):
    history = query(
        sample_warehouse,
        "SELECT refund_id, verdict, first_seen_as_of, nights_seen, request_day "
        "FROM entity_refund_history WHERE entity_id = 'ENT0010231' ORDER BY requested_at",
    )
    verdicts = query(sample_warehouse, "SELECT refund_id, verdict FROM refund_verdicts WHERE entity_id = 'ENT0010231'")
    assert sorted((refund_id, verdict) for refund_id, verdict, *_ in history) == sorted(verdicts)
    assert all(first == date(2026, 3, 30) and nights == 2 for _, _, first, nights, _ in history)
    total = query(sample_warehouse, "SELECT count(*) FROM entity_refund_history")
    assert total == query(sample_warehouse, "SELECT count(*) FROM refund_verdicts")


def test_open_cases_is_the_review_queue(sample_warehouse):
    cases = query(sample_warehouse, "SELECT case_id, first_seen_as_of, nights_seen FROM open_cases")
    expected = query(
        sample_warehouse,
        "SELECT case_id FROM abuse_cases "
        "WHERE disposition IN ('open', 'reopened', 'needs_info') ORDER BY score DESC, case_id",
    )
    assert [case_id for case_id, *_ in cases] == [case_id for (case_id,) in expected] and cases
    raised = dict(query(sample_warehouse, "SELECT case_id, min(as_of) FROM abuse_cases_history GROUP BY ALL"))
    assert {case_id: first for case_id, first, _ in cases} == {case_id: raised[case_id] for case_id, *_ in cases}
    assert {(first, nights) for _, first, nights in cases} <= {(date(2026, 3, 30), 2), (AS_OF, 1)}


def analyst_examples() -> list[str]:
    text = (REPO / "docs" / "analysts.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def test_docs_analysts_has_the_example_queries_the_issue_asks_for():
    examples = "\n".join(analyst_examples())
    assert "money_at_risk_by_rule_month" in examples
    assert "entity_refund_history" in examples
    assert "signal_precision" in examples


@pytest.mark.parametrize("index", range(len(analyst_examples())))
def test_every_example_query_in_docs_analysts_runs_on_the_sample(sample_warehouse, index):
    rows = query(sample_warehouse, analyst_examples()[index])
    assert rows, "an example that returns nothing on the sample shows nothing"
