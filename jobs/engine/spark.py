"""The Spark engine: the same SQL files, translated from DuckDB's SQL on the parse tree, run on a
SparkSession (local, a cluster through spark-submit, or Spark Connect).

DuckDB SQL stays the source. Each statement is parsed by sqlglot (read="duckdb"), rewritten where
the engines differ in a way a tree rewrite can fix, and generated for Spark (write="spark"):

- `getvariable('x')` becomes a typed literal of the step's bound parameter (Spark's variables do
  not work in every place a parameter is used, window frames among them);
- DuckDB macros (`CREATE MACRO`, sql/staging/macros.sql) are remembered when their step runs and
  inlined at every call;
- `timezone(zone, instant)` and `instant AT TIME ZONE zone` become the wall-clock time in `zone`
  computed from the instant alone (`convert_timezone('UTC', zone, <UTC wall clock>)`), right under
  any session time zone (Spark's `from_utc_timestamp`, which sqlglot emits, is right only under UTC);
- `list(x ORDER BY k)` keeps its order and its NULLs:
  `transform(array_sort(collect_list(struct(k, x))), s -> s.x)`, NULL over no rows as on DuckDB;
- `arg_min/arg_max(x, (a, b))` order by a struct, DuckDB's row;
- `to_json` writes timestamps as DuckDB does (`2026-03-06 09:00:00+08` in the run's billing zone,
  NULL fields kept), so evidence texts are equal on both engines.

Tables are temporary views. A table a statement creates (`CREATE TABLE ... AS`, `INSERT`,
`DELETE`) is materialised at once (`localCheckpoint`): later statements read what it held then,
as on DuckDB, and a long chain of rounds does not grow Spark's plan. A file that does not carry
over has an override next to it, `<name>.spark.sql` (jobs/engine/steps.py: `for_engine`).
`check_steps` runs Spark's analyser over every translated step at start-up, on empty inputs,
and names the file that does not carry over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pyarrow
import sqlglot
from sqlglot import exp

from jobs.engine.engine import Typed
from jobs.engine.runner import Runner, plan
from jobs.engine.steps import Step, StepError, for_engine
from jobs.errors import first_line

# Timestamps in JSON as DuckDB writes them: whole seconds without a fraction, a fraction without
# trailing zeros, an offset without ':00' minutes.
_JSON_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSSxxx",
    "timestampNTZFormat": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "ignoreNullFields": "false",
}
_JSON_TIME = "([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})"
_JSON_REWRITES = (
    (_JSON_TIME + '[.]0{6}([+-]|")', "$1$2"),
    (_JSON_TIME + '([.][0-9]*[1-9])0+([+-]|")', "$1$2$3"),
    (_JSON_TIME + '([.][0-9]+)?([+-][0-9]{2}):00"', '$1$2$3"'),
)
# The wall-clock time of an instant in a zone, whatever the session's time zone.
_LOCAL_TIME = sqlglot.parse_one(
    "convert_timezone('UTC', :zone, timestampadd(MICROSECOND, unix_micros(:instant), "
    "CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ)))",
    read="spark",
)
# DuckDB's ordered list, NULLs kept; NULL over no rows.
_ORDERED_LIST = sqlglot.parse_one("nullif(transform(:sorted, s -> s.v), array())", read="spark")


class SparkTranslationError(Exception):
    """A statement has no Spark form (the file needs a `.spark.sql` override)."""


@dataclass(frozen=True)
class _Macro:
    parameters: tuple[str, ...]
    body: exp.Expression


class Translator:
    """DuckDB statements to Spark statements, on the parse tree."""

    def __init__(self, time_zone: str):
        self.time_zone = time_zone
        self.macros: dict[str, _Macro] = {}

    def statements(self, sql: str, params: Mapping[str, Any]) -> list[exp.Expression]:
        """Every statement of `sql`, parsed as DuckDB's and rewritten for Spark (still a tree)."""
        return [
            self.rewrite(cast(exp.Expression, tree), params)
            for tree in sqlglot.parse(sql, read="duckdb")
            if tree is not None
        ]

    def rewrite(self, tree: exp.Expression, params: Mapping[str, Any]) -> exp.Expression:
        tree = tree.transform(lambda node: _parameter(node, params))
        tree = tree.transform(self._inline)
        for rewrite in (_local_time, _ordered_list, _row_orders, self._json):
            tree = tree.transform(rewrite)
        return tree

    def define(self, create: exp.Create) -> None:
        """Remember a scalar macro (its parameters already bound as literals)."""
        function = create.this
        if not isinstance(create.expression, exp.Expression) or isinstance(create.expression, exp.Query):
            raise SparkTranslationError(f"table macro {function.this.name}: no Spark form; inline it in an override")
        self.macros[function.this.name.lower()] = _Macro(
            tuple(arg.name for arg in function.expressions), create.expression
        )

    def _inline(self, node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous) or node.name.lower() not in self.macros:
            return node
        macro = self.macros[node.name.lower()]
        if len(node.expressions) != len(macro.parameters):
            raise SparkTranslationError(f"{node.name} takes {len(macro.parameters)} arguments")
        arguments = dict(zip(macro.parameters, node.expressions, strict=True))

        def bind(inner: exp.Expression) -> exp.Expression:
            if isinstance(inner, exp.Column) and not inner.table and inner.name in arguments:
                return exp.Paren(this=arguments[inner.name].copy())
            return inner

        return macro.body.copy().transform(bind).transform(self._inline)

    def _json(self, node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Anonymous) and node.name.lower() == "to_json" and len(node.expressions) == 1):
            return node
        options = {**_JSON_OPTIONS, "timeZone": self.time_zone}
        text: exp.Expression = exp.Anonymous(
            this="to_json",
            expressions=[
                node.expressions[0],
                exp.Anonymous(
                    this="map", expressions=[exp.Literal.string(part) for pair in options.items() for part in pair]
                ),
            ],
        )
        for pattern, replacement in _JSON_REWRITES:
            text = exp.Anonymous(
                this="regexp_replace", expressions=[text, exp.Literal.string(pattern), exp.Literal.string(replacement)]
            )
        return text


def _parameter(node: exp.Expression, params: Mapping[str, Any]) -> exp.Expression:
    """`getvariable('x')` as a literal of x's bound value, of its type."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() == "getvariable"):
        return node
    name = node.expressions[0].name
    if name not in params:
        raise SparkTranslationError(f"parameter {name} is not bound")
    return literal(params[name])


def literal(value: Any) -> exp.Expression:
    """A Python value as a Spark literal of the type DuckDB would bind it with."""
    if isinstance(value, Typed):
        sql_type = exp.DataType.build(value.sql_type, dialect="duckdb")
        if isinstance(value.value, dict):
            pairs = [literal(part) for pair in value.value.items() for part in pair]
            return exp.cast(exp.Anonymous(this="map", expressions=pairs), sql_type)
        return exp.cast(literal(value.value), sql_type)
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        return exp.cast(exp.Literal.string(repr(value)), "DOUBLE")
    if isinstance(value, Decimal):
        digits, scale = len(value.as_tuple().digits), max(-int(value.as_tuple().exponent), 0)
        return exp.cast(exp.Literal.string(str(value)), f"DECIMAL({max(digits, scale + 1)}, {scale})")
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat()), "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(item) for item in value])
    raise SparkTranslationError(f"no Spark literal for {type(value).__name__}")


def _local_time(node: exp.Expression) -> exp.Expression:
    """DuckDB's `timezone(zone, instant)` / `instant AT TIME ZONE zone`: the wall-clock time."""
    if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone" and len(node.expressions) == 2:
        zone, instant = node.expressions
    elif isinstance(node, exp.AtTimeZone):
        zone, instant = node.args["zone"], node.this
    else:
        return node
    return cast(exp.Expression, exp.replace_placeholders(_LOCAL_TIME.copy(), zone=zone, instant=instant))


def _ordered_list(node: exp.Expression) -> exp.Expression:
    """`list(x [ORDER BY k...]) [FILTER (WHERE c)]` with DuckDB's meaning on Spark."""
    aggregate, where = (node.this, node.expression) if isinstance(node, exp.Filter) else (node, None)
    if not isinstance(aggregate, exp.ArrayAgg):
        return node
    value, keys = aggregate.this, []
    if isinstance(value, exp.Order):
        if any(ordered.args.get("desc") for ordered in value.expressions):
            raise SparkTranslationError("list(... ORDER BY ... DESC) has no Spark form here")
        value, keys = value.this, [ordered.this for ordered in value.expressions]
    fields = [exp.PropertyEQ(this=exp.to_identifier(f"k{index}"), expression=key) for index, key in enumerate(keys)]
    fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=value))
    collected: exp.Expression = exp.Anonymous(this="collect_list", expressions=[exp.Struct(expressions=fields)])
    if where is not None:
        collected = exp.Filter(this=collected, expression=where)
    if keys:
        collected = exp.Anonymous(this="array_sort", expressions=[collected])
    return cast(exp.Expression, exp.replace_placeholders(_ORDERED_LIST.copy(), sorted=collected))


def _row_orders(node: exp.Expression) -> exp.Expression:
    """DuckDB orders `arg_min(x, (a, b))` by the row (a, b): a struct on Spark."""
    if isinstance(node, exp.ArgMax | exp.ArgMin) and isinstance(node.expression, exp.Tuple):
        fields = [
            exp.PropertyEQ(this=exp.to_identifier(f"k{index}"), expression=item)
            for index, item in enumerate(node.expression.expressions)
        ]
        node.set("expression", exp.Struct(expressions=fields))
    return node


class SparkEngine:
    """An Engine over a SparkSession: tables are temporary views of materialised DataFrames.

    `analyse_only` plans every statement without running it (the start-up check).
    """

    def __init__(self, spark, time_zone: str, analyse_only: bool = False):
        self.spark = spark
        self.translator = Translator(time_zone)
        self.analyse_only = analyse_only
        self.tables: dict[str, Any] = {}

    def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        for statement in self.translator.statements(sql, params):
            self._apply(statement)

    def fetch(self, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[tuple]]:
        *statements, query = self.translator.statements(sql, params)
        for statement in statements:
            self._apply(statement)
        frame = self._query(query)
        if self.analyse_only:  # a plan settles at once: a repeated step is analysed, not repeated
            return frame.columns, [tuple(True for _ in frame.columns)]
        table = frame.toArrow()
        return table.column_names, [tuple(row.values()) for row in table.to_pylist()]

    def read_table(self, name: str) -> pyarrow.Table:
        return self._table(name).toArrow()

    def write_table(self, name: str, table: pyarrow.Table) -> None:
        self._store(name, self.spark.createDataFrame(table))

    def sql(self, statement: exp.Expression) -> str:
        """A rewritten statement as Spark SQL."""
        return statement.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)

    def _apply(self, statement: exp.Expression) -> None:
        if isinstance(statement, exp.Create):
            self._create(statement)
        elif isinstance(statement, exp.Insert):
            self._insert(statement)
        elif isinstance(statement, exp.Delete):
            self._delete(statement)
        elif isinstance(statement, exp.Drop):
            self.tables.pop(statement.this.name, None)
            self.spark.catalog.dropTempView(statement.this.name)
        elif isinstance(statement, exp.Query):
            frame = self._query(statement)
            if not self.analyse_only:
                frame.collect()
        else:
            raise SparkTranslationError(f"no Spark form of a {statement.key.upper()} statement")

    def _create(self, create: exp.Create) -> None:
        kind = create.args["kind"].upper()
        if kind == "MACRO":
            self.translator.define(create)
        elif kind not in ("TABLE", "VIEW"):
            raise SparkTranslationError(f"no Spark form of CREATE {kind}")
        elif isinstance(create.expression, exp.Query):
            self._store(
                create.this.name, self._query(cast(exp.Expression, create.expression)), materialise=kind == "TABLE"
            )
        elif isinstance(create.this, exp.Schema):
            columns = ", ".join(
                f"`{column.name}` {column.args['kind'].sql(dialect='spark')}" for column in create.this.expressions
            )
            self._store(create.this.this.name, self.spark.createDataFrame([], columns))
        else:
            raise SparkTranslationError("CREATE TABLE without columns or a query")

    def _insert(self, insert: exp.Insert) -> None:
        target = insert.this
        name = target.this.name if isinstance(target, exp.Schema) else target.name
        table = self._table(name)
        rows = self._query(insert.expression)
        columns = [column.name for column in target.expressions] if isinstance(target, exp.Schema) else table.columns
        if len(columns) != len(rows.columns):
            raise SparkTranslationError(f"INSERT INTO {name}: {len(rows.columns)} values for {len(columns)} columns")
        named = rows.toDF(*columns)
        types = dict(table.dtypes)
        aligned = named.selectExpr(
            *(
                f"CAST(`{column}` AS {types[column]}) AS `{column}`"
                if column in named.columns
                else f"CAST(NULL AS {types[column]}) AS `{column}`"
                for column in table.columns
            )
        )
        self._store(name, table.unionByName(aligned))

    def _delete(self, delete: exp.Delete) -> None:
        name = delete.this.name
        where = delete.args.get("where")
        kept = exp.select("*").from_(delete.this.copy())
        if where is not None:
            kept = kept.where(exp.not_(exp.func("coalesce", exp.Paren(this=where.this), exp.false())))
        else:
            kept = kept.where(exp.false())
        self._store(name, self._query(kept))

    def _query(self, query: exp.Expression):
        return self.spark.sql(self.sql(query))

    def _table(self, name: str):
        if name in self.tables:
            return self.tables[name]
        return self.spark.table(name)

    def _store(self, name: str, frame, materialise: bool = True) -> None:
        if materialise and not self.analyse_only:
            frame = frame.localCheckpoint(eager=True)
        elif self.analyse_only:
            frame.schema  # noqa: B018  (Spark Connect analyses lazily: ask for the schema)
        frame.createOrReplaceTempView(name)
        self.tables[name] = frame


def spark_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """`steps` as Spark runs them: a `<name>.spark.sql` override in place of its file."""
    return tuple(for_engine(step, "spark") for step in steps)


def check_steps(
    spark,
    stages: Sequence[Sequence[Step]],
    params: Mapping[str, Any],
    provided: Mapping[str, pyarrow.Schema],
    time_zone: str,
) -> None:
    """Spark's analyser over every translated step, stage after stage in run order (the macros
    first), on empty inputs: a plan, not a run. Raises StepError naming the first file that does
    not carry over."""
    engine = SparkEngine(spark, time_zone, analyse_only=True)
    for name, schema in provided.items():
        engine.write_table(name, schema.empty_table())
    runner = Runner(engine, params, provided)
    for stage in stages:
        for step in plan(spark_steps(stage), runner.made):
            try:
                runner.run((step,))
            except StepError:
                raise
            except Exception as error:  # sqlglot's and Spark's own errors alike
                raise StepError(f"{step.path}: does not carry over to Spark ({first_line(error)})") from None
