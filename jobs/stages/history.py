"""Records across nights: each night's delivery is upserted into versioned record tables.

The warehouse keeps every version of every record in `<stem>_versions`: the SPEC columns,
where the version came from (`_source_file`, `_source_line`), the run that delivered it
(`_run_id`) and the business dates it is valid for: from `_valid_from`, the as_of of the night
that delivered it, until `_valid_to`, the as_of of the next night that changed it (NULL while
current). A night's records are the versions valid on its as_of, so any night can be replayed
exactly (`records_valid_on`, sql/history/records_valid_on.sql).

A night's folder may be a full snapshot or a delta: a delivered row is stored as a new version
only when it differs from the record as it stood before that night, so an unchanged row keeps
the run that last changed it, and a rerun of the same night on the same files writes nothing.
Records are never deleted: a record missing from a snapshot stays as it was.

Flow: `open_history` (read-only, before loading) -> validation checks tonight's rows against
`stored_<stem>` -> `merge_records` gives the rules `<stem>` = stored + delivered ->
`store_delivery` (inside the publishing transaction) writes the new versions.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from jobs.engine.engine import Engine, scalar, warehouse_has
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import literal
from jobs.engine.steps import step
from jobs.errors import PublishError, first_line
from jobs.stages.loading import LoadedExport
from jobs.stages.schemas import EXPORTS, SQL_TYPES, Export

PROVENANCE_COLUMNS = {
    "_extra_columns": "MAP(VARCHAR, VARCHAR)",  # the file's extra columns: kept, never compared
    "_source_file": "VARCHAR",
    "_source_line": "BIGINT",
    "_run_id": "VARCHAR",
    "_valid_from": "DATE",
    "_valid_to": "DATE",
    "_quarantined": "BOOLEAN",  # the record's delivery that night was quarantined: withheld while current
}
# Which versions a run starts from: delivering a night replaces that night's own delivery,
# so it starts from the versions valid just before as_of; a replay uses those valid on it.
RECORD_VIEWS = tuple(EXPORTS)  # warehouse views: the records the latest run saw
_VALID_BEFORE_AS_OF = "_valid_from < {as_of} AND (_valid_to IS NULL OR _valid_to >= {as_of})"
_VALID_ON_AS_OF = "_valid_from <= {as_of} AND (_valid_to IS NULL OR _valid_to > {as_of})"


# Records judged with another: a refund with its order, so it is withheld while its order is
# (usage is not judged itself; it only counts for its order's refunds, withheld with the order).
_JUDGED_WITH = {"refunds": "order_id IN (SELECT order_id FROM purchases)"}


class HistoryError(PublishError):
    """The warehouse's history cannot be read, or holds nothing to replay; nothing was written."""


def open_history(con: duckdb.DuckDBPyConnection, db_path: Path | None, as_of: date, replay: bool) -> None:
    """Attach the warehouse read-only as `warehouse` (if it exists) and define `stored_<stem>`.

    `stored_<stem>` holds the records the night `as_of` starts from (empty without a warehouse).
    """
    if db_path is not None and db_path.exists():
        try:
            con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(db_path)])
        except duckdb.Error as error:
            raise HistoryError(
                f"{db_path}: cannot open the warehouse to read its history ({first_line(error)})"
            ) from None
    window = (_VALID_ON_AS_OF if replay else _VALID_BEFORE_AS_OF).format(as_of=literal(as_of))
    for export in EXPORTS.values():
        source = f"warehouse.{versions_table(export)}"
        if not warehouse_has(con, versions_table(export)):
            con.execute(versions_ddl(export, f"empty_{versions_table(export)}", temporary=True))
            source = f"empty_{versions_table(export)}"
        missing = "" if "_quarantined" in _columns(con, source) else ", false AS _quarantined"  # older warehouses
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW stored_{export.stem} AS SELECT *{missing} FROM {source} WHERE {window}"
        )


def stored_records(con: duckdb.DuckDBPyConnection) -> int:
    """How many records the night starts from (0: nothing to replay)."""
    return scalar(con, "SELECT " + " + ".join(f"(SELECT count(*) FROM stored_{stem})" for stem in EXPORTS))


def empty_delivery(con: duckdb.DuckDBPyConnection) -> None:
    """A replay delivers nothing: empty `delivered_<stem>` and `quarantined_keys_<stem>` tables
    (what its night withheld is in the stored versions, `_quarantined`)."""
    for export in EXPORTS.values():
        con.execute(
            f"CREATE OR REPLACE TABLE delivered_{export.stem} AS "
            f"SELECT NULL::BIGINT AS _line, {_column_list(export)} FROM stored_{export.stem} LIMIT 0"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE quarantined_keys_{export.stem} AS "
            f"SELECT {', '.join(export.key)}, NULL::BIGINT AS _line FROM stored_{export.stem} LIMIT 0"
        )


def merge_records(engine: Engine, loaded: dict[str, LoadedExport], run_id: str, as_of: date) -> None:
    """`<stem>`: the records the rules judge, tonight's rows (`delivery_<stem>`, with their
    provenance: the file, its line, `run_id`, valid from `as_of`) over the stored ones.

    A record whose latest delivery is quarantined (tonight: `quarantined_keys_<stem>`, made by
    sql/validation/90_quarantined_keys.sql; or an earlier night: a `_quarantined` version) is
    withheld: not judged on its stored version, and its dependants (`_JUDGED_WITH`) neither.
    Tonight's `delivery_<stem>` stores such a record as a `_quarantined` version of its stored one.
    """
    for export in EXPORTS.values():
        columns = _column_list(export)
        key = ", ".join(export.key)
        delivery = loaded.get(export.stem)
        source_file = str(delivery.file.path) if delivery else None
        # The loader keeps a file's extra columns in one map (NULL when it has none).
        extra_map = "_extra_columns" if delivery else "NULL::MAP(VARCHAR, VARCHAR)"
        engine.execute(
            f"CREATE OR REPLACE TEMP VIEW delivery_{export.stem} AS "
            f"SELECT {columns}, "
            f"       {extra_map} AS _extra_columns, "
            f"       {_provenance(source_file, '_line', run_id, as_of, quarantined=False)} "
            f"FROM delivered_{export.stem} "
            f"UNION ALL "
            f"SELECT {_column_list(export, 'stored')}, stored._extra_columns, "
            f"       {_provenance(source_file, 'quarantined._line', run_id, as_of, quarantined=True)} "
            f"FROM stored_{export.stem} AS stored JOIN quarantined_keys_{export.stem} AS quarantined USING ({key})",
            {},
        )
        relation = "VIEW" if export.stem == "usage" else "TABLE"  # usage is big: read it in place
        engine.execute(
            f"CREATE OR REPLACE TEMP {relation} {export.stem} AS "
            f"FROM (SELECT * EXCLUDE (_quarantined) FROM delivery_{export.stem} WHERE NOT _quarantined "
            f"      UNION ALL "
            f"      SELECT * EXCLUDE (_valid_to, _quarantined) FROM stored_{export.stem} AS stored "
            f"      ANTI JOIN delivery_{export.stem} AS tonight ON {_key_match(export, 'tonight', 'stored')} "
            f"      WHERE NOT _quarantined) "  # ON, not USING: Spark would put the key columns first
            f"WHERE {_JUDGED_WITH.get(export.stem, 'true')}",
            {},
        )


def store_delivery(runner: Runner, con: duckdb.DuckDBPyConnection) -> None:
    """Upsert tonight's delivery into `warehouse.<stem>_versions` (inside publish's transaction);
    into a versions table still empty, insert it (the same versions, without comparing)."""
    for export in EXPORTS.values():
        versions = f"warehouse.{versions_table(export)}"
        if not scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {versions} LIMIT 1)"):
            runner.run((step("history/store_first_delivery").render(versions=versions, stem=export.stem),))
            continue
        runner.run(
            (
                step("history/store_delivery").render(
                    versions=versions,
                    stem=export.stem,
                    key=", ".join(export.key),
                    first_key=export.key[0],
                    tonight_columns=_compared_columns(export, "tonight"),
                    stored_columns=_compared_columns(export, "stored"),
                    earlier_columns=_compared_columns(export, "earlier"),
                    kept_match=_key_match(export, "kept"),
                    following_match=_key_match(export, "following"),
                ),
            )
        )


def prepare_versions_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse's versions tables, or bring an older warehouse's up to date (inside
    publish's transaction): their versions came before `_quarantined` and were all judged."""
    for export in EXPORTS.values():
        table = f"warehouse.{versions_table(export)}"
        con.execute(versions_ddl(export, table))
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS _quarantined BOOLEAN DEFAULT false")


def _provenance(source_file: str | None, line: str, run_id: str, as_of: date, quarantined: bool) -> str:
    """The provenance columns of a delivered version, the run's own values as literals."""
    return (
        f"{literal(source_file)}::VARCHAR AS _source_file, {line} AS _source_line, {literal(run_id)} AS _run_id, "
        f"{literal(as_of)} AS _valid_from, {str(quarantined).lower()} AS _quarantined"
    )


def versions_table(export: Export) -> str:
    return f"{export.stem}_versions"


def versions_ddl(export: Export, table: str, temporary: bool = False) -> str:
    """CREATE TABLE IF NOT EXISTS for a versions table: SPEC columns, then provenance."""
    columns = [f'"{name}" {SQL_TYPES[kind]}' for name, kind in export.columns.items()]
    columns += [f"{name} {kind}" for name, kind in PROVENANCE_COLUMNS.items()]
    return f"CREATE {'TEMP ' if temporary else ''}TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


def _key_match(export: Export, other: str, table: str = "versions") -> str:
    return " AND ".join(f"{table}.{name} = {other}.{name}" for name in export.key)


def _compared_columns(export: Export, table: str) -> str:
    """What makes two versions differ: their SPEC columns, and whether the delivery was quarantined."""
    return f"{_column_list(export, table)}, {table}._quarantined"


def _columns(con, relation: str) -> set[str]:
    return {column[0] for column in con.execute(f"SELECT * FROM {relation} LIMIT 0").description}


def _column_list(export: Export, table: str | None = None) -> str:
    prefix = f"{table}." if table else ""
    return ", ".join(f'{prefix}"{name}"' for name in export.columns)
