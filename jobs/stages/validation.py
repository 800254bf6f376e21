"""Validation: decide for every row the run can see whether it is loaded or quarantined.

Three layers, each writing its failures to the `quarantine` table:
1. types: values the loader could not parse (`typed_<stem>._bad_types`);
2. rows: each export's Pandera checks, run as one SQL statement generated from its model
   (jobs/stages/checks.py), so no row leaves DuckDB;
3. across rows: duplicate keys (first in file order wins) and the cross rules in
   `sql/validation/`, run in name order so that a row depending on a quarantined row is
   quarantined with that reason.
What passes becomes tonight's delivery, `delivered_<stem>` (jobs/stages/history.py merges it with the
records stored by earlier nights; cross rules already see those through `stored_<stem>`).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.engine.engine import Engine
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import literal
from jobs.engine.steps import discover, step
from jobs.stages.checks import failures_sql
from jobs.stages.loading import LoadedExport
from jobs.stages.schemas import EXPORTS, Export

FIRST_ROWS_SHOWN = 5  # quarantined rows a rejected night shows per file over the limit


class TooManyBadRows(Exception):
    """Files whose quarantined share is over `max_bad_row_fraction`; `files_over_limit` holds each
    one's counts, share and first quarantined rows (line, column, message)."""

    def __init__(self, message: str, files_over_limit: list[dict]):
        super().__init__(message)
        self.files_over_limit = files_over_limit


@dataclass(frozen=True)
class FileCounts:
    """Row accounting for one export: rows_in = rows_loaded + rows_quarantined."""

    source: str
    rows_read: int
    rows_after_as_of: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int


def validate(runner: Runner, loaded: dict[str, LoadedExport]) -> dict[str, FileCounts]:
    """Quarantine every bad visible row and build the loaded tables; return per-file counts."""
    engine = runner.engine
    as_of_end = literal(runner.params["as_of_end"])  # views cannot take parameters
    for export in EXPORTS.values():
        _create_views(engine, export, as_of_end)
        checks = (_type_errors(export), failures_sql(export, f"visible_{export.stem}"), _duplicate_keys(export))
        engine.execute(  # one statement for the three (on Spark: one job and one checkpoint, not three)
            "INSERT INTO quarantine " + " UNION ALL ".join(f"SELECT * FROM ({failures})" for failures in checks), {}
        )
        runner.provide(f"visible_{export.stem}", f"passing_{export.stem}")
    runner.run(discover("validation"))
    runner.run((step("staging/quarantine_cleanup"),))
    return {stem: _deliver(engine, loaded[stem]) for stem in EXPORTS}


def enforce_bad_row_limit(engine: Engine, counts: dict[str, FileCounts], max_bad_row_fraction: float) -> None:
    """Raise TooManyBadRows naming every file over the limit with its share and first quarantined rows."""
    over = [
        count
        for count in counts.values()
        if count.rows_in and count.rows_quarantined / count.rows_in > max_bad_row_fraction
    ]
    if not over:
        return
    shares = "; ".join(
        f"{count.source}: {count.rows_quarantined} of {count.rows_in} rows quarantined "
        f"({count.rows_quarantined / count.rows_in:.2%})"
        for count in over
    )
    raise TooManyBadRows(
        f"{shares}, over max_bad_row_fraction {max_bad_row_fraction:.2%}; nothing was written",
        [
            {
                "source": count.source,
                "quarantined": count.rows_quarantined,
                "rows_in": count.rows_in,
                "share": round(count.rows_quarantined / count.rows_in, 4),
                "first_rows": _first_rows(engine, count.source),
            }
            for count in over
        ],
    )


def _first_rows(engine: Engine, source: str) -> list[dict]:
    """The file's first quarantined rows in line order, each with its column and why."""
    _, rows = engine.fetch(
        f'SELECT line, "column", message FROM quarantine WHERE source = {literal(source)} '
        f'ORDER BY line, "column" LIMIT {FIRST_ROWS_SHOWN}',
        {},
    )
    return [dict(zip(("line", "column", "message"), row, strict=False)) for row in rows]


def _create_views(engine: Engine, export: Export, as_of_end: str) -> None:
    """`visible_<stem>`: rows the run can see (SPEC section 3); `passing_<stem>`: not yet quarantined."""
    stem = export.stem
    engine.execute(
        f"CREATE OR REPLACE TEMP VIEW visible_{stem} AS SELECT * FROM typed_{stem} WHERE {_visible(export, as_of_end)}",
        {},
    )
    engine.execute(
        f"CREATE OR REPLACE TEMP VIEW passing_{stem} AS SELECT * FROM visible_{stem} "
        f"WHERE _line NOT IN (SELECT line FROM quarantine WHERE source = '{stem}')",
        {},
    )


def _visible(export: Export, as_of_end: str) -> str:
    """SQL: the row is known by the end of as_of, or has no valid moment (and is judged)."""
    return f"({export.visible_by} IS NULL OR {export.visible_by} < {as_of_end})"


def _type_errors(export: Export) -> str:
    """SQL: a quarantine row for each value the loader could not parse."""
    return (
        f"SELECT {literal(export.stem)}, _line, bad.column, 'type', bad.value, "
        "       bad.column || ' must be ' || bad.expected || ', got ''' || bad.value || '''' "
        f"FROM (SELECT _line, unnest(_bad_types) AS bad FROM visible_{export.stem} WHERE len(_bad_types) > 0)"
    )


def _duplicate_keys(export: Export) -> str:
    """SQL: of visible rows sharing a key, all but the first in file order, as quarantine rows.

    Keys are first grouped by their hash (a small hash table, where grouping 50M text keys
    spills), and only rows whose hash repeats are compared by key.
    """
    key = ", ".join(export.key)
    key_text = " || ' / ' || ".join(
        f"instant_text({column})" if export.columns[column] == "timestamp" else f"CAST({column} AS VARCHAR)"
        for column in export.key
    )
    not_null = " AND ".join(f"{column} IS NOT NULL" for column in export.key)
    return f"""
        WITH candidate AS (
            SELECT * FROM visible_{export.stem}
            WHERE {not_null} AND hash({key}) IN (
                SELECT hash({key}) AS key_hash FROM visible_{export.stem} WHERE {not_null}
                GROUP BY key_hash HAVING count(*) > 1)),
        first AS (SELECT {key}, min(_line) AS _line FROM candidate GROUP BY {key} HAVING count(*) > 1)
        SELECT '{export.stem}', row._line, '{key}', 'duplicate_key', {key_text},
               'duplicate of the row on line ' || first._line || ' (same {key}); the first row wins'
        FROM candidate AS row JOIN first USING ({key})
        WHERE row._line > first._line
        """


def _deliver(engine: Engine, loaded: LoadedExport) -> FileCounts:
    """Count the file's rows and define `delivered_<stem>`: the visible rows not quarantined; return the counts.

    Every row is now loaded or quarantined, so the delivery is `visible_<stem>` without the
    lines quarantined (a snapshot, `undelivered_<stem>`: a later entry in the quarantine never
    changes the delivery), without a copy. The loader wrote the rows in file order, so the
    delivery is in line order.
    """
    stem = loaded.file.export.stem
    engine.execute(
        f"CREATE TABLE undelivered_{stem} AS SELECT DISTINCT line FROM quarantine WHERE source = {literal(stem)}", {}
    )
    engine.execute(
        f"CREATE VIEW delivered_{stem} AS SELECT * EXCLUDE (_bad_types) FROM visible_{stem} "
        f"WHERE _line NOT IN (SELECT line FROM undelivered_{stem})",
        {},
    )
    _, [(typed, visible, quarantined, loaded_rows)] = engine.fetch(
        f"SELECT (SELECT count(*) FROM typed_{stem}), (SELECT count(*) FROM visible_{stem}), "
        f"(SELECT count(*) FROM undelivered_{stem}), (SELECT count(*) FROM delivered_{stem})",
        {},
    )
    after = typed - visible
    unreadable = loaded.rows_read - after - visible
    return FileCounts(stem, loaded.rows_read, after, visible + unreadable, loaded_rows, quarantined)
