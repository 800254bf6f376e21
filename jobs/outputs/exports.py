"""Exports for other tools: Parquet by as_of, CSV, an Excel workbook, run_results.json (issue #6, #14).

Written after the warehouse is committed, from the warehouse opened read-only, next to it:

    <db dir>/exports/parquet/<table>/as_of=YYYY-MM-DD/data.parquet   Hive-style partitions
        (and, Parquet only, the night's run and records: REPORT_TABLES, for `report --from`)
    <db dir>/exports/csv/as_of=YYYY-MM-DD/<table>.csv                one folder per night
    <db dir>/exports/xlsx/refund-recon-YYYY-MM-DD.xlsx               the tables for Excel (outputs/workbook.py)
    <db dir>/run_results.json                                        the latest run, for schedulers

A replay (a run without input) writes the same layout under `<db dir>/replays/<run_id>/`
instead, so the files its night published stay as they were.

Rerunning a night replaces its partition and never leaves a half-written file where a reader
looks (jobs/outputs/files.py): a Parquet file is written under a hidden name and renamed over
`data.parquet`; a night's CSV files are written into a hidden folder that then takes the
partition's place; run_results.json is renamed into place whole. The partition column `as_of` lives in the
folder name, not in the Parquet files (the Hive convention: DuckDB, Spark and pyarrow read it
back from the path; pyarrow refuses a dataset holding it in both places).

CSV cells: UTF-8 with a header row, dates and times ISO 8601 (times in UTC), lists joined
with '; ', structs as JSON; a text cell a spreadsheet would take for a formula gets a leading
single quote (numbers are written as numbers). Payment fingerprints are never printed in
full; with `[privacy] mask_csv_exports` account and entity identifiers are masked too, in
their own columns and wherever they appear in evidence or messages: every id the warehouse
knows, by the one rule of jobs/outputs/masking.py.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import cast

import duckdb
import pyarrow
from duckdb.sqltypes import DuckDBPyType

from jobs.csvsafe import FORMULA_STARTS
from jobs.engine.engine import DuckDBEngine
from jobs.engine.sqlfiles import literal, quoted
from jobs.errors import first_line
from jobs.outputs import files, formats, masking, workbook
from jobs.outputs.outcome import money_by_currency, night_status, night_warnings
from jobs.stages.decisions import decision_totals
from jobs.stages.publish import PublishError, output_folder

# The latest-run output tables exported each night; the optional ones when the warehouse has them.
EXPORT_TABLES = (
    "refund_flags",
    "refund_verdicts",
    "validation_errors",
    "abuse_signals",
    "abuse_cases",
    "pending_refund_decisions",
)
OPTIONAL_EXPORT_TABLES = ("daily_reconciliation", "invariant_results", "gate_results")
# Parquet only, for `refund-recon report --from` (docs/report.md, "From Parquet outputs"): the
# run's row of `runs`, and the records the night saw (their SPEC columns) for the case timelines.
REPORT_TABLES = ("runs", "purchases", "refunds", "account_status")
# Columns holding account or entity identifiers (masked in CSV when mask_csv_exports is on).
IDENTIFIER_COLUMNS = frozenset({"account_id", "entity_id", "entity_ids", "account_ids", "earlier_account_id"})
RUN_RESULTS_SCHEMA = "refund-recon/run-results/v1"


class ExportError(PublishError):
    """The exports could not be written (the warehouse itself is published)."""


def write_exports(db_path: Path, run_id: str, settings, result) -> list[Path]:
    """Write the run's exports into its output folder (next to the warehouse, or a replay's own
    folder: jobs/stages/publish.py `output_folder`); return their paths."""
    started = time.perf_counter()
    db_path = Path(db_path)
    try:
        with duckdb.connect(str(db_path), read_only=True, config=settings.duckdb_config(db_path)) as con:
            con.execute("SET TimeZone = 'UTC'")
            _check_latest_run(con, run_id)
            (mode,) = con.execute("SELECT mode FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
            base = output_folder(db_path, run_id, mode)
            tables = exported_tables(con)
            # The workbook is Python (XlsxWriter) on one core; DuckDB writes Parquet and CSV meanwhile.
            with ThreadPoolExecutor(max_workers=1) as workbook_writer:
                book = workbook_writer.submit(
                    _write_workbook, con.cursor(), base, tables, run_id, result.as_of, settings.mask_csv_exports
                )
                parquet = [
                    _write_parquet(con, base, table, run_id, result.as_of) for table in (*tables, *REPORT_TABLES)
                ]
                csv_files = _write_csv_night(con, base, tables, result.as_of, settings.mask_csv_exports)
                written = parquet + csv_files + [book.result()]
            results_path = base / "run_results.json"
            seconds = dict(result.stage_seconds)
            seconds["exports"] = time.perf_counter() - started
            document = run_results(con, result, seconds, base, [*written, results_path])
        files.write_atomically([(results_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")])
    except (OSError, duckdb.Error) as error:
        raise ExportError(f"writing the exports failed; the warehouse is published ({first_line(error)})") from None
    return [*written, results_path]


def _write_workbook(con, base: Path, tables: list[str], run_id: str, as_of: date, mask_identifiers: bool) -> Path:
    """The night's workbook, on a connection of its own (`con`, closed here)."""
    with con:
        con.execute("SET TimeZone = 'UTC'")
        return workbook.write_workbook(
            con, workbook.workbook_path(base, as_of), tables, _workbook_summary(con, run_id), mask_identifiers
        )


def exported_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The output tables to export from this warehouse, in export order."""
    present = {
        name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    }
    return [table for table in EXPORT_TABLES + OPTIONAL_EXPORT_TABLES if table in present]


def _check_latest_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    latest = con.execute("SELECT run_id FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1").fetchone()
    if latest is None or latest[0] != run_id:
        raise ExportError(
            f"the warehouse's latest run is {latest and latest[0]}, not {run_id} "
            f"(another run published meanwhile); its exports are left to it"
        )


# --- Parquet ----------------------------------------------------------------------------------


def _write_parquet(con, base: Path, table: str, run_id: str, as_of: date) -> Path:
    """`exports/parquet/<table>/as_of=<as_of>/data.parquet`, replaced in one rename."""
    target = base / "exports" / "parquet" / table / f"as_of={as_of.isoformat()}" / "data.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(target) as temp:
        con.execute(f"COPY ({_parquet_select(con, table, run_id)}) TO {literal(str(temp))} (FORMAT parquet)")
    return target


def _parquet_select(con, table: str, run_id: str) -> str:
    """Every column but as_of (it is the partition) and a record's bookkeeping (`_source_line` ...);
    HUGEINT counts as BIGINT (Parquet has no 128-bit int). Of `runs`, the run's row only."""
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
        "AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    selected = [
        f"CAST({quoted(name)} AS BIGINT) AS {quoted(name)}" if kind in ("HUGEINT", "UHUGEINT") else quoted(name)
        for name, kind in columns
        if name != "as_of" and not name.startswith("_")
    ]
    where = f" WHERE run_id = {literal(run_id)}" if table == "runs" else ""
    return f"SELECT {', '.join(selected)} FROM {quoted(table)}{where}"


# --- CSV --------------------------------------------------------------------------------------


def _write_csv_night(con, base: Path, tables: list[str], as_of: date, mask_identifiers: bool) -> list[Path]:
    """`exports/csv/as_of=<as_of>/<table>.csv`, the night's folder replaced as a whole."""
    target = base / "exports" / "csv" / f"as_of={as_of.isoformat()}"
    with files.new_folder(target) as temp:
        _install_csv_macros(con, mask_identifiers)
        for table in tables:
            _write_csv(con, table, temp / f"{table}.csv", mask_identifiers)
    return [target / f"{table}.csv" for table in tables]


def _write_csv(con, table: str, path: Path, mask_identifiers: bool) -> None:
    """One table as CSV: rendered, masked and neutralised in DuckDB and written by one `COPY`.

    CRLF line ends, a cell quoted only when it holds a comma, a quote or a line break (`COMMENT
    ''`, or DuckDB would quote every '#'), an empty cell written as nothing (NULL, or DuckDB
    would write ""). Known ids that are runs of word characters are masked token by token in
    SQL; a cell text holding any other known id is masked by `masking.Masker` (`_mask_odd_texts`).
    """
    relation = con.sql(f"SELECT * FROM {quoted(table)}")
    columns = list(zip(relation.columns, relation.types, strict=False))
    texts = [_unscrubbed_sql(name, kind, mask_identifiers) for name, kind in columns]
    scrubbed = [index for index, (_, scrub) in enumerate(texts) if scrub]
    _mask_odd_texts(con, table, [texts[index][0] for index in scrubbed], mask_identifiers)
    cells = ", ".join(
        f"nullif({_cell_sql(kind, _scrubbed_text(index, texts[index]))}, '') AS {quoted(name)}"
        for index, (name, kind) in enumerate(columns)
    )
    con.execute(
        _CSV_COPY.format(
            table=quoted(table),
            path=literal(str(path)),
            cells=cells,
            texts="".join(f", {texts[index][0]} AS csv_text_{index}" for index in scrubbed),
            text_list=", ".join(f"csv_text_{index}" for index in scrubbed) or "NULL::VARCHAR",
            joins=" ".join(
                f"LEFT JOIN scrubbed AS scrubbed_{index} ON scrubbed_{index}.original = cell.csv_text_{index}"
                for index in scrubbed
            ),
        )
    )


def _scrubbed_text(index: int, text: tuple[str, bool]) -> str:
    """SQL for column `index`'s text after masking, in `_CSV_COPY`."""
    sql, scrub = text
    return f"coalesce(scrubbed_{index}.scrubbed, cell.csv_text_{index})" if scrub else sql


def _mask_odd_texts(con, table: str, text_sqls: list[str], mask_identifiers: bool) -> None:
    """`csv_odd_scrubbed(original, scrubbed)`: the table's cell texts holding a known id that is not
    a run of word characters (spaces, '#', ',', non-ASCII: rare), masked in Python."""
    originals = []
    if text_sqls:
        originals = [
            text
            for (text,) in con.execute(
                f"""
            SELECT DISTINCT text FROM (SELECT unnest([{", ".join(text_sqls)}]) AS text FROM {quoted(table)} AS cell)
            WHERE EXISTS (SELECT 1 FROM {masking.KNOWN_IDS} AS known
                          WHERE NOT known.is_word AND list_contains(?, known.kind) AND contains(text, known.id))""",
                [masking.kinds(mask_identifiers)],
            ).fetchall()
        ]
    masker = masking.masker_for(con, originals, mask_identifiers)
    con.register(
        "csv_odd_scrubbed",
        pyarrow.table(
            {
                "original": pyarrow.array(originals, pyarrow.string()),
                "scrubbed": pyarrow.array([masker.text(text) for text in originals], pyarrow.string()),
            }
        ),
    )


_FORMULA_STARTS_SQL = ", ".join(f"chr({ord(start)})" for start in FORMULA_STARTS)

# Macros rendering cells as `csv_text` does; JSON strings are escaped as
# `json.dumps(text, ensure_ascii=False)` escapes them.
_CSV_MACROS = rf"""
CREATE OR REPLACE TEMP MACRO csv_neutralised(text) AS
    CASE WHEN left(text, 1) IN ({_FORMULA_STARTS_SQL}) THEN '''' || text ELSE text END;
CREATE OR REPLACE TEMP MACRO csv_utc_time(moment) AS
    regexp_replace(strftime(moment, '%Y-%m-%dT%H:%M:%S.%f'), '\.000000$', '') || '+00:00';
CREATE OR REPLACE TEMP MACRO csv_json_string(text) AS
    '"' || array_to_string(list_transform(string_split(text, ''), lambda character:
        CASE WHEN character = '"' THEN '\"' WHEN character = '\' THEN '\\'
             WHEN character = chr(8) THEN '\b' WHEN character = chr(9) THEN '\t'
             WHEN character = chr(10) THEN '\n' WHEN character = chr(12) THEN '\f'
             WHEN character = chr(13) THEN '\r'
             WHEN ord(character) < 32 THEN printf('\u%04x', ord(character))
             ELSE character END), '') || '"';
"""

# `scrubbed`: each cell text holding a known id to mask, masked. The ids of `csv_scrub_words` are
# runs of [A-Za-z0-9_], so a match is a whole such token; texts holding any other id were
# masked in Python (`csv_odd_scrubbed`).
_CSV_COPY = """
COPY (
    WITH cell AS (SELECT rowid AS csv_row, *{texts} FROM {table} AS cell),
         texts AS (SELECT DISTINCT unnest([{text_list}]) AS text FROM cell),
         word_texts AS (SELECT text FROM texts ANTI JOIN csv_odd_scrubbed AS odd ON odd.original = texts.text),
         masks AS (SELECT text, map(list(word), list(masked)) AS masks
                   FROM (SELECT DISTINCT text, word.word, word.masked
                         FROM (SELECT text, unnest(regexp_extract_all(text, '[A-Za-z0-9_]+')) AS token FROM word_texts)
                         JOIN csv_scrub_words AS word ON word.word = token)
                   GROUP BY text),
         scrubbed AS (SELECT text AS original,
                             array_to_string(list_transform(regexp_extract_all(text, '[A-Za-z0-9_]+|[^A-Za-z0-9_]+'),
                                 lambda token: coalesce(map_extract_value(masks, token), token)), '') AS scrubbed
                      FROM masks
                      UNION ALL SELECT original, scrubbed FROM csv_odd_scrubbed)
    SELECT {cells} FROM cell {joins} ORDER BY cell.csv_row
) TO {path} (FORMAT csv, HEADER true, NEW_LINE '\r\n', COMMENT '')
"""


def _install_csv_macros(con, mask_identifiers: bool) -> None:
    """The cell macros, the warehouse's known ids, and those masked token by token as `csv_scrub_words`."""
    con.execute(_CSV_MACROS)
    masking.create_known_ids(con)
    kinds = ", ".join(f"'{kind}'" for kind in masking.kinds(mask_identifiers))
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW csv_scrub_words AS SELECT DISTINCT id AS word, masked "
        f"FROM {masking.KNOWN_IDS} WHERE is_word AND kind IN ({kinds})"
    )


_NUMBER_TYPES = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "decimal",
        "double",
        "float",
    }
)
_NOT_TEXT_TYPES = _NUMBER_TYPES | {"boolean", "date", "timestamp with time zone"}


def _cell_sql(kind: DuckDBPyType, text: str) -> str:
    """SQL for the CSV text of a column's cells from their masked `text`: text neutralised."""
    return text if kind.id in _NOT_TEXT_TYPES else f"csv_neutralised({text})"


def _unscrubbed_sql(column: str, kind: DuckDBPyType, mask_identifiers: bool) -> tuple[str, bool]:
    """SQL for a column's cell text before masking known ids in it, and whether that applies.

    It applies to text, lists of text and JSON (not to numbers, in lists or not); masking a
    list's joined text masks each item, as no word spans the '; ' between two items.
    """
    if mask_identifiers and column in IDENTIFIER_COLUMNS:
        # masked whole (masking.mask_id), then as text: the characters a mask keeps may be a short id
        return _text_sql(f"cell.{quoted(column)}", kind, "masked_fingerprint"), _holds_text(kind)
    return _text_sql(f"cell.{quoted(column)}", kind), _holds_text(kind)


def _holds_text(kind: DuckDBPyType) -> bool:
    while kind.id == "list":
        kind = _element(kind)
    return kind.id in ("varchar", "struct")


def _element(kind: DuckDBPyType) -> DuckDBPyType:
    """The type of a list's items."""
    return cast(DuckDBPyType, kind.children[0][1])


def _fields(kind: DuckDBPyType) -> list[tuple[str, DuckDBPyType]]:
    """A struct's field names and types."""
    return [(str(name), cast(DuckDBPyType, child)) for name, child in kind.children]


def _text_sql(value: str, kind: DuckDBPyType, mask: str = "", depth: int = 0) -> str:
    """SQL for `csv_text(value, mask)` of a value of type `kind` (NULL for None); no mask: as is."""
    if kind.id == "varchar":
        return f"{mask}({value})"
    if kind.id == "list":
        item = f"item{depth}"
        rendered = _text_sql(item, _element(kind), mask, depth + 1)
        return f"array_to_string(list_transform({value}, lambda {item}: coalesce({rendered}, '')), '; ')"
    if kind.id == "struct":
        return f"{mask}(CASE WHEN {value} IS NOT NULL THEN {_json_sql(value, kind, depth)} END)"
    return _scalar_text_sql(value, kind.id)


def _scalar_text_sql(value: str, kind_id: str) -> str:
    """SQL for a number, boolean, date or time as `csv_text` writes it."""
    if kind_id == "float":  # Python sees the float as a double
        return f"CAST(CAST({value} AS DOUBLE) AS VARCHAR)"
    if kind_id in _NUMBER_TYPES or kind_id in ("boolean", "date"):
        return f"CAST({value} AS VARCHAR)"
    if kind_id == "timestamp with time zone":
        return f"csv_utc_time({value})"
    raise ExportError(f"the CSV exports cannot write a {kind_id} ({value})")


def _json_sql(value: str, kind: DuckDBPyType, depth: int) -> str:
    """SQL for `json_text(value)`: never NULL (None is null)."""
    if kind.id == "struct":
        fields = " || ',' || ".join(
            f"{literal(json.dumps(str(name), ensure_ascii=False) + ':')} || "
            f"{_json_sql(f'struct_extract({value}, {literal(name)})', child, depth)}"
            for name, child in _fields(kind)
        )
        return f"CASE WHEN {value} IS NULL THEN 'null' ELSE '{{' || {fields} || '}}' END"
    if kind.id == "list":
        item = f"item{depth}"
        rendered = _json_sql(item, _element(kind), depth + 1)
        return (
            f"coalesce('[' || array_to_string(list_transform({value}, lambda {item}: {rendered}), ',') || ']', 'null')"
        )
    if kind.id in ("double", "float"):
        return (
            f"coalesce(CASE WHEN isnan({value}) THEN 'NaN' WHEN isinf({value}) THEN "
            f"CASE WHEN {value} > 0 THEN 'Infinity' ELSE '-Infinity' END "
            f"ELSE {_scalar_text_sql(value, kind.id)} END, 'null')"
        )
    if kind.id == "varchar":
        return f"coalesce(csv_json_string({value}), 'null')"
    if kind.id in ("date", "timestamp with time zone"):
        return f"coalesce(csv_json_string({_scalar_text_sql(value, kind.id)}), 'null')"
    return f"coalesce({_scalar_text_sql(value, kind.id)}, 'null')"


def csv_text(value, mask=lambda text: text) -> str:
    """One value as CSV text: ISO 8601 dates and UTC times, lists joined with '; ', structs as JSON.

    `mask` is applied to every piece of text (not to numbers, dates or booleans).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "; ".join(csv_text(item, mask) for item in value)
    if isinstance(value, dict):
        return mask(json_text(value))
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return mask(str(value))


def json_text(value) -> str:
    """Compact JSON text of a value; decimals keep their exact digits (1999.00, not 1999.0)."""
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(json.dumps(str(key), ensure_ascii=False) + ":" + json_text(item) for key, item in value.items())
            + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(jsonable(value), ensure_ascii=False)


def jsonable(value):
    """A DuckDB value as JSON data: numbers stay numbers, times ISO 8601, structs objects."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and formats.decimals(value) == 0 else float(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --- run_results.json -------------------------------------------------------------------------


def run_results(con, result, stage_seconds: dict[str, float], base: Path, paths: list[Path]) -> dict:
    """What a scheduler wants to know about the run, in the spirit of dbt's run_results.json."""
    run = _one(con, "SELECT * FROM runs WHERE run_id = ?", [result.run_id])
    files = {item["source"]: _file_entry(item) for item in run["input_files"]}
    for source, counts in result.files.items():  # the run's own counts, should the record lack one
        files.setdefault(
            source,
            {
                name: getattr(counts, name)
                for name in ("rows_read", "rows_after_as_of", "rows_in", "rows_loaded", "rows_quarantined")
            },
        )
    flags = con.execute(
        "SELECT rule.rule_code, rule.category, rule.severity, count(flag.rule_code), "
        "coalesce(sum(flag.amount_at_risk), 0) FROM rule_catalog AS rule "
        "LEFT JOIN refund_flags AS flag USING (rule_code) "
        "GROUP BY rule.rule_code, rule.category, rule.severity, rule.position ORDER BY rule.position"
    ).fetchall()
    verdicts = con.execute(
        "SELECT verdict, currency, count(*), sum(amount_at_risk), sum(refund_amount) FROM refund_verdicts "
        "GROUP BY ALL ORDER BY verdict, currency"
    ).fetchall()
    signals = con.execute("SELECT signal_code, count(*) FROM abuse_signals GROUP BY ALL ORDER BY 1").fetchall()
    cases = con.execute("SELECT disposition, count(*) FROM abuse_cases GROUP BY ALL ORDER BY 1").fetchall()
    warnings = _warnings(con, run)
    # The run ends with this file: finished_at - started_at is elapsed_seconds (the stages and the
    # moments between them); published_at is when the warehouse took the night (runs.finished_at).
    finished_at = datetime.now(UTC)
    document = {
        "metadata": {
            "schema": RUN_RESULTS_SCHEMA,
            "generated_at": finished_at.isoformat(),
            "code_version": run["code_version"],
            "config_hash": run["config_hash"],
        },
        "run_id": run["run_id"],
        "as_of": run["as_of"].isoformat(),
        "status": night_status(warnings) if run["status"] == "succeeded" else run["status"],
        "warnings": warnings,
        "started_at": jsonable(run["started_at"]),
        "published_at": jsonable(run["finished_at"]),
        "finished_at": jsonable(finished_at),
        "elapsed_seconds": round((finished_at - run["started_at"]).total_seconds(), 3),
        "billing_time_zone": run["billing_time_zone"],
        "refund_window_days": run["refund_window_days"],
        "files": files,
        "totals": {
            name: run[name] for name in ("rows_in", "rows_loaded", "rows_quarantined", "refunds_checked", "flag_count")
        },
        "flags_per_rule": {code: count for code, _, _, count, _ in flags},
        "rules": [
            {
                "rule_code": code,
                "category": category,
                "severity": severity,
                "flags": count,
                "amount_at_risk": jsonable(amount),
            }
            for code, category, severity, count, amount in flags
        ],
        "verdicts": [
            {
                "verdict": verdict,
                "currency": currency,
                "refunds": count,
                "amount_at_risk": jsonable(at_risk),
                "refund_amount": jsonable(refunded),
            }
            for verdict, currency, count, at_risk, refunded in verdicts
        ],
        "abuse": {
            "signals": dict(signals),
            "cases": sum(count for _, count in cases),
            "cases_by_disposition": dict(cases),
        },
        "decisions": [
            {name: jsonable(value) for name, value in row.items()} for row in decision_totals(DuckDBEngine(con))
        ],
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in stage_seconds.items()},
        "stage_peak_rss_bytes": dict(getattr(result, "stage_peak_rss_bytes", {})),
        "invariants": _invariants(con),
        "outputs": {
            "base_dir": str(base.resolve()),
            "paths": [path.relative_to(base).as_posix() for path in paths],
            "reports": [_relative(Path(path), base) for path in getattr(result, "report_paths", [])],
        },
    }
    return document


def _file_entry(item: dict) -> dict:
    keys = (
        "file_name",
        "format",
        "sha256",
        "size_bytes",
        "extra_columns",
        "rows_read",
        "rows_after_as_of",
        "rows_in",
        "rows_loaded",
        "rows_quarantined",
    )
    return {key: jsonable(item[key]) for key in keys if key in item}


def _workbook_summary(con, run_id: str) -> dict:
    """The workbook's summary sheet: the night, its status and warnings, the money per currency."""
    run = _one(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
    warnings = _warnings(con, run)
    money = money_by_currency(DuckDBEngine(con)) if "daily_reconciliation" in exported_tables(con) else {}
    return {
        "as_of": run["as_of"],
        "run_id": run_id,
        "status": night_status(warnings),
        "warnings": warnings,
        "money": money,
    }


def _warnings(con, run: dict) -> list[dict]:
    return night_warnings(_gates(con), run["input_files"] or [])


def _gates(con) -> list[dict]:
    """The run's gates (none in a warehouse from before the gates)."""
    if "gate_results" not in exported_tables(con):
        return []
    cursor = con.execute("SELECT gate, source, passed, message FROM gate_results ORDER BY gate, source")
    return [dict(zip([column[0] for column in cursor.description], row, strict=False)) for row in cursor.fetchall()]


def _invariants(con) -> dict | None:
    """The run's invariant checks, when the warehouse keeps them (None otherwise)."""
    if "invariant_results" not in exported_tables(con):
        return None
    cursor = con.execute("SELECT * FROM invariant_results ORDER BY position")
    columns = [column[0] for column in cursor.description]
    rows = [{name: jsonable(value) for name, value in zip(columns, row, strict=False)} for row in cursor.fetchall()]
    passed = sum(row["passed"] is True for row in rows)
    failed = sum(row["passed"] is False for row in rows)
    return {"total": len(rows), "passed": passed, "failed": failed, "results": rows}


# --- helpers ----------------------------------------------------------------------------------


def _one(con, sql: str, parameters) -> dict:
    cursor = con.execute(sql, parameters)
    row = cursor.fetchone()
    if row is None:
        raise ExportError(f"no row for {parameters!r} in: {sql}")
    return dict(zip([column[0] for column in cursor.description], row, strict=False))


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)
