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
  NULL fields kept), so evidence texts are equal on both engines;
- and the smaller differences of `_REWRITES` below (lists, `unnest`, `range`, `product`, `strftime`,
  `printf('%g')`, `rowid`, a struct `unnest`d into columns), with `COLUMNS(regex)` and DuckDB's
  `UNPIVOT ... ON COLUMNS(...)` expanded against the columns Spark's analyser sees.

Tables are temporary views. A table a statement creates (`CREATE TABLE ... AS`, `INSERT`,
`DELETE`) is materialised at once (`localCheckpoint`): later statements read what it held then,
as on DuckDB, and a long chain of rounds does not grow Spark's plan. A file that does not carry
over has an override next to it, `<name>.spark.sql` (jobs/engine/steps.py: `for_engine`).
`check_steps` runs Spark's analyser over every translated step at start-up, on empty inputs,
and names the file that does not carry over.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, cast

import pyarrow
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

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


class _DuckDB(DuckDB):
    """DuckDB's SQL as the job writes it: `len(x)` is a list's length (Spark's `size`), never a
    string's (the job writes `length` for those)."""

    class Parser(DuckDB.Parser):  # type: ignore[misc,valid-type]  # sqlglot builds its Parser classes at run time
        FUNCTIONS: ClassVar = {
            **DuckDB.Parser.FUNCTIONS,
            "LEN": lambda args: exp.Anonymous(this="size", expressions=args),
        }


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
            for tree in sqlglot.parse(sql, read=_DuckDB)
            if tree is not None
        ]

    def rewrite(self, tree: exp.Expression, params: Mapping[str, Any]) -> exp.Expression:
        """`tree` rewritten in place (it is freshly parsed: copying it at each pass cost a third of
        the translation's time)."""
        tree = tree.transform(lambda node: _parameter(node, params), copy=False)
        tree = tree.transform(self._inline, copy=False)
        for rewrite in (*_REWRITES, self._json, self._strftime):
            tree = tree.transform(rewrite, copy=False)
        return _separate_aliases(tree)

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

        return macro.body.copy().transform(bind, copy=False).transform(self._inline, copy=False)

    def _strftime(self, node: exp.Expression) -> exp.Expression:
        """`strftime(instant, format)` prints the instant in the session's zone on both engines: on
        Spark the billing zone's wall clock is printed, and `%z` is its offset (`+0800`). A wall
        clock (`strftime(timezone('UTC', instant), ...)`) is printed as it is."""
        if not isinstance(node, exp.TimeToStr) or isinstance(node.this, exp.ConvertTimezone):
            return node  # a wall clock already (DuckDB's `timezone(zone, instant)`): printed as it is
        zone = exp.Literal.string(self.time_zone)
        local = _local_time(exp.Anonymous(this="timezone", expressions=[zone, node.this]))
        parts: list[exp.Expression] = []
        for index, text in enumerate(node.args["format"].name.split("%z")):
            if index:
                parts.append(
                    _spark(
                        "format_string('%s%02d%02d', CASE WHEN _offset.m < 0 THEN '-' ELSE '+' END, "
                        "abs(_offset.m) DIV 60, abs(_offset.m) % 60)",
                    ).transform(lambda inner: self._offset(inner, local, node.this))
                )
            if text:
                parts.append(exp.TimeToStr(this=local.copy(), format=exp.Literal.string(text)))
        return parts[0] if len(parts) == 1 else exp.Concat(expressions=parts)

    @staticmethod
    def _offset(node: exp.Expression, local: exp.Expression, instant: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table == "_offset":
            return exp.Paren(
                this=_spark(
                    "timestampdiff(MINUTE, timestampadd(MICROSECOND, unix_micros(:instant), "
                    "CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ)), :local)",
                    instant=instant,
                    local=local,
                )
            )
        return node

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
    """`list([DISTINCT] x [ORDER BY k...]) [FILTER (WHERE c)]` with DuckDB's meaning on Spark
    (a DISTINCT list orders by its value: DuckDB allows no other key with DISTINCT)."""
    aggregate, where = (node.this, node.expression) if isinstance(node, exp.Filter) else (node, None)
    if not isinstance(aggregate, exp.ArrayAgg):
        return node
    value, keys = aggregate.this, []
    if isinstance(value, exp.Order):
        if any(ordered.args.get("desc") for ordered in value.expressions):
            raise SparkTranslationError("list(... ORDER BY ... DESC) has no Spark form here")
        value, keys = value.this, [ordered.this for ordered in value.expressions]
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        value = value.expressions[0]
        if any(key != value for key in keys):
            raise SparkTranslationError("list(DISTINCT x ORDER BY another key) has no Spark form here")
        keys = keys or [value]
    fields = [exp.PropertyEQ(this=exp.to_identifier(f"k{index}"), expression=key) for index, key in enumerate(keys)]
    fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=value))
    collected: exp.Expression = exp.Anonymous(this="collect_list", expressions=[exp.Struct(expressions=fields)])
    if where is not None:
        collected = exp.Filter(this=collected, expression=where)
    if distinct:
        collected = exp.Anonymous(this="array_distinct", expressions=[collected])
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


def _spark(template: str, **parts: exp.Expression) -> exp.Expression:
    """A Spark SQL expression with `:name` placeholders filled by (copies of) `parts`."""
    tree = sqlglot.parse_one(template, read="spark")
    return tree.transform(
        lambda node: parts[node.name].copy() if isinstance(node, exp.Placeholder) and node.name in parts else node
    )


def _lateral_unnest(node: exp.Expression) -> exp.Expression:
    """`FROM t, unnest(t.list) AS u(x)`: Spark's `CROSS JOIN LATERAL explode(t.list) AS u(x)`
    (sqlglot's LATERAL VIEW would come after the joins that read `x`)."""
    if not (isinstance(node, exp.Join) and isinstance(node.this, exp.Unnest) and len(node.this.expressions) == 1):
        return node
    unnest = node.this
    lateral = exp.Lateral(this=exp.Explode(this=unnest.expressions[0]), view=False, alias=unnest.args.get("alias"))
    return exp.Join(this=lateral, kind="CROSS")


def _series(node: exp.Expression) -> exp.Expression:
    """`range(start, stop, step)` as a table (stop excluded): Spark's exploded `sequence`."""
    if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
        return node
    series = node.this
    stop = series.args["end"]
    if not series.args.get("is_end_exclusive"):
        raise SparkTranslationError("generate_series as a table has no Spark form here")
    node.set(
        "this",
        _spark(
            "explode(filter(sequence(:start, :stop, :step), _value -> _value < :stop))",
            start=series.args["start"],
            stop=stop,
            step=series.args["step"],
        ),
    )
    return node


def _window_median(node: exp.Expression) -> exp.Expression:
    """`median(x) OVER (... ROWS ...)`: Spark's median takes no frame; `percentile(x, 0.5)` does
    (both interpolate, both DOUBLE)."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Median):
        node.set("this", _spark("percentile(:value, 0.5)", value=node.this.this))
    return node


def _functions(node: exp.Expression) -> exp.Expression:
    """DuckDB functions Spark lacks, by name: `product`, `list_bool_and`, `list_position`, `printf`."""
    if not isinstance(node, exp.Anonymous):
        return node
    name = node.name.lower()
    if name == "product" and len(node.expressions) == 1:
        return _spark(
            "CASE WHEN count(:value) > 0 THEN aggregate(collect_list(:value), CAST(1 AS DOUBLE), "
            "(_product, _factor) -> _product * _factor) END",
            value=node.expressions[0],
        )
    if name == "list_bool_and" and len(node.expressions) == 1:
        return _spark(
            "aggregate(:list, CAST(NULL AS BOOLEAN), (_all, _item) -> CASE WHEN _item IS NULL THEN _all "
            "WHEN _all IS NULL THEN _item ELSE _all AND _item END)",
            list=node.expressions[0],
        )
    if name == "list_position" and len(node.expressions) == 2:  # 1-based on both; not found: NULL, as DuckDB's
        return _spark("nullif(array_position(:list, :value), 0)", list=node.expressions[0], value=node.expressions[1])
    if name == "printf" and node.expressions and isinstance(node.expressions[0], exp.Literal):
        return _printf(node)
    return node


_FORMAT_SPEC = re.compile(r"%[-#+ 0-9.]*[a-zA-Z%]")


def _printf(node: exp.Anonymous) -> exp.Expression:
    """`printf`'s `%g` (fmt: `50`, `62.5`) is Java's `50.0000` on Spark: such an argument is printed
    as a DECIMAL without trailing zeros (`%s`), exact for the job's scores and thresholds."""
    pattern, *arguments = node.expressions
    specs = [spec for spec in _FORMAT_SPEC.findall(pattern.name) if spec != "%%"]
    for index, spec in enumerate(specs):
        if spec == "%g":
            arguments[index] = _spark(
                "regexp_replace(regexp_replace(CAST(CAST(:value AS DECIMAL(38, 6)) AS STRING), '0+$', ''), '[.]$', '')",
                value=arguments[index],
            )
    return exp.Anonymous(
        this="format_string", expressions=[exp.Literal.string(pattern.name.replace("%g", "%s")), *arguments]
    )


def _row_in(node: exp.Expression) -> exp.Expression:
    """`(a, b) IN (SELECT (a, b) FROM t)`: DuckDB compares rows with a subquery of one row column,
    Spark with a subquery of as many columns."""
    query = node.args.get("query") if isinstance(node, exp.In) else None
    select = query.this if isinstance(query, exp.Subquery) else query
    if (
        isinstance(node.this, exp.Tuple)
        and isinstance(select, exp.Select)
        and len(select.expressions) == 1
        and isinstance(select.expressions[0], exp.Tuple | exp.Paren)
    ):
        row = select.expressions[0]
        select.set("expressions", [item.copy() for item in getattr(row, "expressions", None) or [row.this]])
    return node


def _any_value(node: exp.Expression) -> exp.Expression:
    """`any_value(x)` (sqlglot adds IGNORE NULLS, which Spark refuses beside FILTER): `any_value(x, true)`."""
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return exp.Anonymous(this="any_value", expressions=[node.this.this, exp.true()])
    return node


def _row_ids(node: exp.Expression) -> exp.Expression:
    """DuckDB's `rowid` (a row's place in its table): `monotonically_increasing_id()` over the
    stored table, whose partitions keep the order its rows were written in."""
    if not isinstance(node, exp.Select):
        return node
    uses = [
        column
        for column in node.find_all(exp.Column)
        if column.name == "rowid" and not column.table and column.find_ancestor(exp.Select) is node
    ]
    source = node.args.get("from_")
    if not uses or source is None or not isinstance(source.this, exp.Table):
        return node
    table = source.this
    numbered = exp.select("*", "monotonically_increasing_id() AS _rowid").from_(exp.Table(this=table.this.copy()))
    source.set("this", numbered.subquery(table.alias_or_name))
    for column in uses:
        column.replace(exp.column("_rowid"))
    return node


def _struct_columns(node: exp.Expression) -> exp.Expression:
    """`SELECT unnest({'a': ..., 'b': ...}) FROM ...`: DuckDB makes the struct's fields columns;
    on Spark the struct is selected, then its fields (`_fields.*`)."""
    if not (isinstance(node, exp.Select) and len(node.expressions) == 1):
        return node
    only = node.expressions[0]
    if not (isinstance(only, exp.Explode | exp.Unnest) and isinstance(_argument(only), exp.Struct)):
        return node
    inner = node.copy()
    inner.set("expressions", [exp.alias_(_argument(only).copy(), "_fields")])
    return exp.select("_fields.*").from_(inner.subquery("_struct"))


def _argument(node: exp.Expression) -> exp.Expression:
    return node.expressions[0] if isinstance(node, exp.Unnest) else node.this


def _separate_aliases(tree: exp.Expression) -> exp.Expression:
    """Every table a query reads gets an alias `_<name>` (`FROM refund_verdicts AS _verdict`,
    `FROM verdicts AS _verdicts`) and its qualified columns follow: Spark reads `verdict.refund_id`
    as a field of a column `verdict` when the table called `verdict` has such a column and was
    joined USING."""
    lambdas = {parameter.name for lam in tree.find_all(exp.Lambda) for parameter in lam.expressions}
    renamed: set[str] = set()
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.parent, exp.From | exp.Join) or table.args.get("db") or not table.name:
            continue
        name = table.alias or table.name
        if name not in lambdas:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(f"_{name}")))
            renamed.add(name)
    for alias in tree.find_all(exp.TableAlias):
        if isinstance(alias.parent, exp.Subquery | exp.Lateral) and alias.name and alias.name not in lambdas:
            renamed.add(alias.name)
            alias.set("this", exp.to_identifier(f"_{alias.name}"))
    for column in tree.find_all(exp.Column):
        if column.table in renamed:
            column.set("table", exp.to_identifier(f"_{column.table}"))
    return tree


# The rewrites every statement goes through, in this order (after parameters and macros).
_REWRITES = (
    _local_time,
    _ordered_list,
    _row_orders,
    _lateral_unnest,
    _series,
    _window_median,
    _functions,
    _row_in,
    _any_value,
    _row_ids,
    _struct_columns,
)


class SparkEngine:
    """An Engine over a SparkSession: tables are temporary views of materialised DataFrames.

    `analyse_only` plans every statement without running it (the start-up check).
    """

    def __init__(self, spark, time_zone: str, analyse_only: bool = False):
        from py4j.protocol import Py4JJavaError  # type: ignore[import-not-found]  # PySpark's, present with it
        from pyspark.errors import PySparkException  # type: ignore[import-not-found]

        self.query_errors: tuple[type[Exception], ...] = (
            PySparkException,
            Py4JJavaError,
            sqlglot.errors.SqlglotError,
            SparkTranslationError,
        )
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
        table = frame.toArrow()  # rows by position: two columns may share a name
        return table.column_names, list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def read_table(self, name: str) -> pyarrow.Table:
        return self._table(name).toArrow()

    def read_typed(self, name: str, types: Sequence[tuple[str, str]]) -> pyarrow.Table:
        """A table with its columns cast to the types DuckDB gives them (the data dictionary's):
        Spark's `sum` of a BIGINT is a BIGINT where DuckDB's is a HUGEINT, say."""
        return (
            self._table(name)
            .selectExpr(*(f"CAST(`{column}` AS {spark_type(sql_type)}) AS `{column}`" for column, sql_type in types))
            .toArrow()
        )

    def write_table(self, name: str, table: pyarrow.Table) -> None:
        """A table from Python: Arrow's rows are already at hand (no checkpoint); an empty table keeps its types."""
        self._store(
            name,
            self.spark.createDataFrame(table.combine_chunks() if table.num_rows else table.schema.empty_table()),
            materialise=False,
        )

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
        elif kind == "VIEW" and isinstance(create.expression, exp.Query):
            self._view(create.this.name, cast(exp.Expression, create.expression))
        elif isinstance(create.expression, exp.Query):
            self._store(create.this.name, self._query(cast(exp.Expression, create.expression)))
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
        return self.spark.sql(self.sql(self._expanded(query)))

    def _expanded(self, query: exp.Expression) -> exp.Expression:
        """`COLUMNS(regex)` and DuckDB's `UNPIVOT (query) ON COLUMNS(...)` spelled out with the
        columns Spark's analyser finds in the FROM clause they select from."""
        if not query.find(exp.Columns):
            return query
        query = query.copy()
        for select in reversed(list(query.find_all(exp.Select))):
            if any(projection.find(exp.Columns) for projection in select.expressions):
                names = self._columns_of(select, query)
                select.set(
                    "expressions", [each for projection in select.expressions for each in _spelled(projection, names)]
                )
        return query.transform(self._unpivot)

    def _columns_of(self, select: exp.Select, root: exp.Expression) -> list[str]:
        """The columns `SELECT *` would give over `select`'s FROM and joins (with the CTEs before it)."""
        scope = exp.Select(expressions=[exp.Star()], from_=select.args["from_"].copy())
        scope.set("joins", [join.copy() for join in select.args.get("joins") or []])
        with_ = root.args.get("with_")
        if with_ is not None:
            ctes = list(with_.expressions)
            inside = select.find_ancestor(exp.CTE)
            ctes = ctes[: ctes.index(inside)] if inside in ctes else ctes
            if ctes:
                scope.set("with_", exp.With(expressions=[cte.copy() for cte in ctes]))
        return list(self.spark.sql(self.sql(scope)).columns)

    def _unpivot(self, node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Pivot) and node.args.get("unpivot") and isinstance(node.this, exp.Subquery)):
            return node
        inner = node.this.this
        names = [projection.alias_or_name for projection in inner.expressions]
        (on,) = node.expressions
        if not (isinstance(on, exp.Columns) and isinstance(on.this, exp.Star)):
            raise SparkTranslationError("UNPIVOT ... ON: only COLUMNS(* EXCLUDE (...)) has a Spark form here")
        excluded = {column.name for column in on.this.args.get("except_") or []}
        into = node.args["into"]
        listed = ", ".join(f"`{name}`" for name in names if name not in excluded)
        return cast(
            exp.Query,
            sqlglot.parse_one(
                f"SELECT * FROM ({self.sql(inner)}) AS _wide UNPIVOT (`{into.expressions[0].name}` "
                f"FOR `{into.this.name}` IN ({listed}))",
                read="spark",
            ),
        ).subquery()

    def _view(self, name: str, query: exp.Expression) -> None:
        """A view as on DuckDB: its query is read again each time (it sees a table's later rows)."""
        self.tables.pop(name, None)
        self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW `{name}` AS {self.sql(self._expanded(query))}")

    def _table(self, name: str):
        if name in self.tables:
            return self.tables[name]
        return self.spark.table(name)

    def _store(self, name: str, frame, materialise: bool = True) -> None:
        if self.analyse_only:  # analysed (the schema asked for), then kept as an empty table of its
            # columns: later plans stay one statement deep
            frame = self.spark.createDataFrame([], frame.schema)
        elif materialise:
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self.tables[name] = frame


def spark_type(duckdb_type: str) -> str:
    """A column type as DuckDB names it, in Spark's words (HUGEINT: DECIMAL(38,0), as DuckDB hands it to Arrow)."""
    return (
        exp.DataType.build(duckdb_type, dialect="duckdb")
        .transform(
            lambda node: (
                exp.DataType.build("DECIMAL(38, 0)")
                if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128
                else node
            )
        )
        .sql(dialect="spark")
    )


def _spelled(projection: exp.Expression, names: list[str]) -> list[exp.Expression]:
    """A projection with `COLUMNS(regex)` (or `COLUMNS(* EXCLUDE (...))`) once per matching column;
    an alias like '\\1' is the column's name with the regex replaced, as DuckDB names it."""
    found = projection.find(exp.Columns)
    if found is None:
        return [projection]
    if isinstance(found.this, exp.Star):
        excluded = {column.name for column in found.this.args.get("except_") or []}
        pattern, matching = None, [name for name in names if name not in excluded]
    else:
        pattern = re.compile(found.this.name)
        matching = [name for name in names if pattern.search(name)]
    spelled = []
    for name in matching:
        column = exp.column(name, quoted=True)
        copy = column if isinstance(projection, exp.Columns) else projection.copy()
        if copy is not column:
            cast(exp.Expression, copy.find(exp.Columns)).replace(column)
        if isinstance(copy, exp.Alias) and pattern is not None and "\\" in copy.alias:
            copy.set("alias", exp.to_identifier(pattern.sub(copy.alias, name), quoted=True))
        spelled.append(copy)
    return spelled


def spark_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """`steps` as Spark runs them: a `<name>.spark.sql` override in place of its file."""
    return tuple(for_engine(step, "spark") for step in steps)


class SparkRunner(Runner):
    """A Runner that runs each step's Spark form (its override, when it has one), so the stages
    (jobs/stages/rules.py, abuse.py, reconciliation.py, decisions.py) run on Spark unchanged.

    Over an `analyse_only` engine it is the start-up check: the same stages, every step planned
    by Spark's analyser and none run; a step that does not carry over raises StepError naming its file.
    """

    engine: SparkEngine

    def run(self, steps: Sequence[Step]) -> None:
        super().run(spark_steps(steps))

    def fetch(self, step: Step) -> tuple[list[str], list[tuple]]:
        step = for_engine(step, "spark")
        with self._naming(step):
            return super().fetch(step)

    def _run(self, step: Step) -> None:
        with self._naming(step):
            super()._run(step)

    @contextmanager
    def _naming(self, step: Step) -> Iterator[None]:
        try:
            yield
        except StepError:
            raise
        except Exception as error:  # sqlglot's and Spark's own errors alike
            if not getattr(self.engine, "analyse_only", False):
                raise
            raise StepError(f"{step.path}: does not carry over to Spark ({first_line(error)})") from None


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
    runner = SparkRunner(engine, params, provided)
    for stage in stages:
        for step in plan(spark_steps(stage), runner.made):
            runner.run((step,))
