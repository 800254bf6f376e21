"""The Pandera models' row checks as SQL: one statement per export finds every failed (row, check).

The models in jobs/stages/schemas.py stay the single source of the checks. This module reads
their Check objects (a check's name and statistics, a column's nullability; a model's own
row check carries its SQL twin in `statistics["sql"]`) and writes each as a SQL predicate,
so the checks run where the data is, in one set-based scan of the export, on any engine
that runs the job's SQL. A check it does not know stops the run (`UnknownCheck`): none is
ever skipped. tests/test_checks.py runs Pandera's pandas backend on the same rows to prove
both find the same failures.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pandera.pandas as pa

from jobs.engine.sqlfiles import literal, quoted
from jobs.stages.schemas import Export


class UnknownCheck(Exception):
    """A Pandera check with no SQL form here; the message names the model, column and check."""


def failures_sql(export: Export, relation: str) -> str:
    """SELECT source, line, column, check, value, message: one row per failed (row, check) of `relation`."""
    failures = _failures(export)
    return (
        f"SELECT {literal(export.stem)} AS source, _line AS line, failure.column, failure.check, "
        f"failure.value, failure.message "
        f"FROM (SELECT _line, unnest(list_filter([{', '.join(_entry(*failure) for failure in failures)}], "
        f"lambda entry: entry IS NOT NULL)) AS failure "
        f"FROM {relation} WHERE {' OR '.join(condition for condition, *_ in failures)})"
    )


def _failures(export: Export) -> tuple[tuple[str, str, str, str, str], ...]:
    """(fails, column, check, value, message) for every check of the model, each an SQL expression
    but `column` and `check`: fails is true exactly when the row fails the check."""
    schema = export.row_schema.to_schema()
    failures = []
    for name, column in schema.columns.items():
        if column.unique or column.regex:
            raise UnknownCheck(f"{export.row_schema.__name__}.{name}: unique and regex columns have no SQL form")
        raw = quoted(name)
        if not column.nullable:
            failures.append((f"{raw} IS NULL", name, "not_nullable", "NULL", literal(f"{name} is required but empty")))
        for check in column.checks:
            passes, wording = _column_check(export, name, check)
            value = f"CAST({raw} AS VARCHAR)"
            message = f"{literal(f'{name} must be {wording}, got ')} || {_quoted_text(value)}"
            failures.append((f"({raw} IS NOT NULL AND NOT ({passes}))", name, check.name, value, message))
    for check in schema.checks:
        failures.append(_row_check(export, check))
    if schema.unique:
        raise UnknownCheck(f"{export.row_schema.__name__}: a unique constraint has no SQL form here")
    return tuple(failures)


def _entry(fails: str, column: str, check: str, value: str, message: str) -> str:
    return (
        f"CASE WHEN {fails} THEN {{'column': {literal(column)}, 'check': {literal(check)}, "
        f"'value': CAST({value} AS VARCHAR), 'message': {message}}} END"
    )


# A column check's SQL (it passes) and its wording, from its statistics; NULL values pass (ignore_na).
_COLUMN_CHECKS: dict[str, Callable[[str, dict], tuple[str, str]]] = {
    "greater_than": lambda raw, s: (f"{raw} > {_number(s['min_value'])}", f"greater than {s['min_value']}"),
    "greater_than_or_equal_to": lambda raw, s: (f"{raw} >= {_number(s['min_value'])}", f"at least {s['min_value']}"),
    "less_than": lambda raw, s: (f"{raw} < {_number(s['max_value'])}", f"less than {s['max_value']}"),
    "less_than_or_equal_to": lambda raw, s: (f"{raw} <= {_number(s['max_value'])}", f"at most {s['max_value']}"),
    "isin": lambda raw, s: (
        f"{raw} IN ({', '.join(map(literal, s['allowed_values']))})",
        "one of " + ", ".join(s["allowed_values"]),
    ),
    # Pandera matches at the start of the text (RE2 for Arrow strings, as in DuckDB).
    "str_matches": lambda raw, s: (
        f"regexp_matches({raw}, {literal(s['pattern'] if s['pattern'].startswith('^') else '^' + s['pattern'])})",
        f"text matching {s['pattern']!r}",
    ),
}


def _column_check(export: Export, column: str, check: pa.Check) -> tuple[str, str]:
    make = _COLUMN_CHECKS.get(check.name or "")
    if make is None or check.groupby or check.element_wise or not check.ignore_na:
        raise UnknownCheck(f"{export.row_schema.__name__}.{column}: check {check.error or check.name} has no SQL form")
    return make(quoted(column), check.statistics or {})


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise UnknownCheck(f"a check's bound {value!r} is not a number")
    return str(value)


def _row_check(export: Export, check: pa.Check) -> tuple[str, str, str, str, str]:
    """A model's own row check: its SQL twin passes where the pandas function is true; an unknown
    (NULL) result passes, as the functions fill missing amounts with true."""
    name = check.name or ""
    twin = (check.statistics or {}).get("sql")
    rule = export.row_rules.get(name)
    if not twin or rule is None:
        raise UnknownCheck(f"{export.row_schema.__name__}: row check {check.name} has no SQL twin or wording")
    figures = " || ', ' || ".join(f"{literal(name + '=')} || {_figure(export, name)}" for name in rule.figures)
    return (f"NOT coalesce({twin}, true)", rule.column, name, figures, literal(rule.message))


def _figure(export: Export, name: str) -> str:
    """A value in a row check's figures: as loaded, a timestamp in UTC, a missing one 'empty'."""
    raw = quoted(name)
    if export.columns[name] != "timestamp":
        return f"coalesce(CAST({raw} AS VARCHAR), 'empty')"
    utc = f"timezone('UTC', {raw})"
    seconds = f"strftime({utc}, '%Y-%m-%d %H:%M:%S')"
    fraction = f"CASE WHEN strftime({utc}, '%f') = '000000' THEN '' ELSE '.' || strftime({utc}, '%f') END"
    return f"coalesce({seconds} || {fraction} || '+00:00', 'empty')"


# What repr() escapes inside the quotes, as SQL: a backslash first, then tab, LF and CR.
_ESCAPES = (("'\\'", "'\\\\'"), ("chr(9)", "'\\t'"), ("chr(10)", "'\\n'"), ("chr(13)", "'\\r'"))


def _quoted_text(text: str) -> str:
    """SQL: `text` quoted as Python's repr() quotes it (control characters other than tab, LF
    and CR are shown as they are)."""
    escaped = text
    for character, escape in _ESCAPES:
        escaped = f"replace({escaped}, {character}, {escape})"
    single = f"'''' || replace({escaped}, '''', '\\''') || ''''"
    double = f"'\"' || {escaped} || '\"'"
    return f"CASE WHEN contains({text}, '''') AND NOT contains({text}, '\"') THEN {double} ELSE {single} END"
