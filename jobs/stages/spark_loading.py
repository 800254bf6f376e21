"""Loading on Spark: the four exports as Parquet, the lake's format (issue #13).

Each export is `<input>/<stem>.parquet` (one file, or a folder of part files), read by Spark.
A row's `_line` is its 1-based row number in its file, Parquet's row index (`_metadata.row_index`,
exact across splits), as the SPEC says for Parquet. Values are typed by the same expressions as on
DuckDB (`typed_columns` of jobs/stages/loading.py, translated like every step), so `typed_<stem>`
has the same rows and `_bad_types` on both engines. CSV is refused: Spark's reader cannot number
a CSV's lines exactly (a quoted field may span lines), and a guessed line is never written.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from jobs.engine.spark import SparkEngine
from jobs.errors import first_line
from jobs.stages.loading import ExportFile, LoadedExport, StructuralError, typed_columns
from jobs.stages.schemas import EXPORTS, Export

# Spark's names of the Parquet types it reads, as DuckDB names the same types (typed_columns
# speaks DuckDB's). A type missing here is kept by name: no value of it parses (a type error).
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
}


def locate_parquet_exports(engine: SparkEngine, input_path: str) -> dict[str, str]:
    """Each export's Parquet path (a file, or a folder of parts), listed without reading a byte;
    StructuralError when one is missing or given as CSV."""
    located = {}
    for stem in EXPORTS:
        path = f"{input_path.rstrip('/')}/{stem}.parquet"
        if not _listed(engine, path, ".parquet"):
            raise StructuralError(_missing(engine, input_path, stem))
        located[stem] = path
    return located


def find_parquet_exports(engine: SparkEngine, located: dict[str, str]) -> dict[str, ExportFile]:
    """Each located export with its size and sha256 (hashed on an executor), or StructuralError."""
    found = {}
    for stem, path in located.items():
        files = _binary_files(engine, path)
        sizes = [size for size, _ in files]
        sha256 = files[0][1] if len(files) == 1 else ""  # a folder of parts has no one digest
        if not sum(sizes):
            raise StructuralError(f"{path}: file is empty (expected Parquet)")
        found[stem] = ExportFile(EXPORTS[stem], PurePosixPath(path), "parquet", sum(sizes), sha256)  # type: ignore[arg-type]
    return found


def load_parquet_export(engine: SparkEngine, file: ExportFile) -> LoadedExport:
    """Read one export into `typed_<stem>`, numbered by Parquet row index; StructuralError if unreadable."""
    export, path = file.export, str(file.path)
    try:
        frame = engine.spark.read.parquet(path).selectExpr("_metadata.row_index + 1 AS _line", "*")
        source_columns = {field.name: _duckdb_type(field.dataType.simpleString()) for field in frame.schema.fields}
    except Exception as error:  # Spark's AnalysisException and friends: not a Parquet file it can read
        raise StructuralError(f"{path}: cannot be read as a Parquet file on Spark ({first_line(error)})") from None
    source_columns.pop("_line")
    _require_columns(export, path, source_columns)
    extra = tuple(name for name in source_columns if name not in export.columns)
    frame.createOrReplaceTempView(f"raw_{export.stem}")
    engine.execute(
        f"CREATE OR REPLACE TABLE typed_{export.stem} AS SELECT _line, "
        f"{typed_columns(export, source_columns, {name: name for name in extra})} FROM raw_{export.stem}",
        {},
    )
    _, [(rows,)] = engine.fetch(f"SELECT count(*) FROM typed_{export.stem}", {})
    return LoadedExport(file, rows, extra)


def _binary_files(engine: SparkEngine, path: str) -> list[tuple[int, str]]:
    """(size, sha256) of each `*.parquet` file at `path` (a file, or a folder of parts)."""
    rows = _files_at(engine, path, ".parquet").selectExpr("length", "sha2(content, 256) AS sha256").orderBy("path")
    return [(row["length"], row["sha256"]) for row in rows.collect()]


def _listed(engine: SparkEngine, path: str, suffix: str) -> bool:
    """Whether `path` holds a `*<suffix>` file (is one, or is a folder with one): a listing only."""
    try:
        return bool(_files_at(engine, path, suffix).inputFiles())
    except Exception:  # PATH_NOT_FOUND: Spark's own error, by message only on Spark Connect
        return False


def _files_at(engine: SparkEngine, path: str, suffix: str):
    """The `*<suffix>` files at `path` as Spark's binaryFile rows (nothing read until asked)."""
    return engine.spark.read.format("binaryFile").option("pathGlobFilter", f"*{suffix}").load(path)


def _missing(engine: SparkEngine, input_path: str, stem: str) -> str:
    """Why an export is not found: absent, or given as CSV (which Spark does not number exactly)."""
    for suffix in (".csv", ".csv.gz"):
        if _listed(engine, f"{input_path.rstrip('/')}/{stem}{suffix}", suffix):
            return (
                f"{input_path}/{stem}{suffix}: the Spark engine reads Parquet only (a CSV's lines cannot be "
                f"numbered exactly there); convert it to {stem}.parquet or run with --engine duckdb"
            )
    return f"{input_path}: missing export '{stem}' (expected {stem}.parquet, a file or a folder of parts)"


def _require_columns(export: Export, path: str, source_columns: dict[str, str]) -> None:
    missing = [name for name in export.columns if name not in source_columns]
    if missing:
        raise StructuralError(
            f"{path}: missing required column '{missing[0]}' (expected columns: {', '.join(export.columns)})"
        )


def _duckdb_type(spark_type: str) -> str:
    if spark_type.startswith("decimal("):
        return spark_type.upper()
    return _DUCKDB_TYPES.get(spark_type, spark_type.upper())
