"""The engine seam: the little a step runner needs from a SQL engine.

Steps run through this interface only, so a second engine (Spark) is an adapter of these four
methods. DuckDB's binds a step's parameters as session variables (`getvariable('name')`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import pyarrow

from jobs.engine.sqlfiles import quoted


@dataclass(frozen=True)
class Typed:
    """A parameter value with the SQL type it must have (a dict is bound as a MAP)."""

    value: Any
    sql_type: str


class Engine(Protocol):
    """Run a statement, run a query, read a table, write a table; `query_errors`: what a statement
    the engine cannot run raises."""

    query_errors: tuple[type[Exception], ...]

    def execute(self, sql: str, params: Mapping[str, Any]) -> None: ...

    def fetch(self, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[tuple]]: ...

    def read_table(self, name: str) -> pyarrow.Table: ...

    def write_table(self, name: str, table: pyarrow.Table) -> None: ...


class DuckDBEngine:
    """An Engine over one DuckDB connection."""

    query_errors: tuple[type[Exception], ...] = (duckdb.Error,)

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        self._bind(params)
        self.con.execute(sql).fetchall()  # finished: DuckDB runs nothing else on a pending result

    def fetch(self, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[tuple]]:
        self._bind(params)
        cursor = self.con.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()

    def read_table(self, name: str) -> pyarrow.Table:
        return self.con.table(name).to_arrow_table()

    def write_table(self, name: str, table: pyarrow.Table) -> None:
        with self.con.cursor() as cursor:  # its own cursor: this one may hold an unfinished result
            cursor.register("incoming", table)
            cursor.execute(f"CREATE OR REPLACE TABLE {quoted(name)} AS SELECT * FROM incoming")

    def _bind(self, params: Mapping[str, Any]) -> None:
        for name, value in params.items():
            if not isinstance(value, Typed):
                self.con.execute(f"SET VARIABLE {quoted(name)} = ?", [value])
            elif isinstance(value.value, dict):
                self.con.execute(
                    f"SET VARIABLE {quoted(name)} = map(?, ?)::{value.sql_type}",
                    [list(value.value), list(value.value.values())],
                )
            else:
                self.con.execute(f"SET VARIABLE {quoted(name)} = ?::{value.sql_type}", [value.value])


def records(engine: Engine, sql: str) -> list[dict]:
    """A query's rows as dicts of column name to value."""
    names, rows = engine.fetch(sql, {})
    return [dict(zip(names, row, strict=True)) for row in rows]


def duckdb_connection(engine: Engine) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection under `engine`, for the work only DuckDB does (reading files with
    their lines, Pandera's batches, the warehouse's transaction)."""
    if not isinstance(engine, DuckDBEngine):
        raise TypeError(f"this needs the DuckDB engine, not {type(engine).__name__}")
    return engine.con


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The one value a query returns."""
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise LookupError(f"no row from {sql}")
    return row[0]


def warehouse_has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the warehouse attached as `warehouse` holds `table`."""
    return bool(
        scalar(
            con,
            "SELECT count(*) > 0 FROM duckdb_tables() WHERE database_name = 'warehouse' "
            "AND schema_name = 'main' AND table_name = ?",
            [table],
        )
    )
