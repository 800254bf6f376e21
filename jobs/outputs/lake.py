"""A Spark run's outputs: each night's tables as Parquet under `<out>/<table>/as_of=<D>/`, the layout
and columns of the DuckDB engine's Parquet exports (jobs/outputs/exports.py), written whole or
not at all.

A night is written under `<out>/_staging/<run_id>/<table>/as_of=<D>/`, then committed: a marker
`_COMMITTING` is written, and each table's folder is renamed into place (an earlier run of the same
night moved aside first). A run killed before the marker leaves nothing visible (its staging is
removed by the next run); one killed during the renames is finished by the next run, which rolls
every interrupted commit forward before it starts. Renames go through Hadoop's FileSystem, the
one Spark writes with (local folders, HDFS, object stores, where a rename is a copy); on Spark
Connect, whose client has no driver, through this machine's file system (a local or mounted --out).
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

from jobs.engine.spark import SparkEngine, spark_type
from jobs.errors import PublishError
from jobs.outputs.dictionary import TABLES
from jobs.outputs.exports import EXPORT_TABLES, OPTIONAL_EXPORT_TABLES, REPORT_TABLES

# Every table a Spark night writes: the DuckDB engine's Parquet exports (REPORT_TABLES included).
NIGHT_TABLES = (*EXPORT_TABLES, *OPTIONAL_EXPORT_TABLES, *REPORT_TABLES)
# Those equal to the DuckDB engine's: all but gate_results, empty on Spark (no gate runs there, docs/spark.md).
SAME_ON_BOTH_ENGINES = tuple(table for table in NIGHT_TABLES if table != "gate_results")
_COLUMNS = {table.name: [(column.name, column.type) for column in table.columns] for table in TABLES}
_COMMITTING = "_COMMITTING"


class LakeError(PublishError):
    """The outputs folder cannot be written or committed."""


class HadoopFiles:
    """Folders through the classic Spark driver's Hadoop FileSystem (local disks, HDFS, S3...)."""

    def __init__(self, spark, root: str):
        self._path = spark._jvm.org.apache.hadoop.fs.Path
        self._fs = self._path(root).getFileSystem(spark._jsc.hadoopConfiguration())

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._path(path)))

    def folders(self, path: str) -> list[str]:
        """The sub-folders of `path` (none when it is not there), as full paths, sorted."""
        if not self.exists(path):
            return []
        return sorted(str(status.getPath()) for status in self._fs.listStatus(self._path(path)) if status.isDirectory())

    def touch(self, path: str) -> None:
        self._fs.create(self._path(path)).close()

    def move(self, source: str, target: str) -> None:
        """Rename `source` to `target` (absent), making its parent folders."""
        self._fs.mkdirs(self._path(target).getParent())
        if not self._fs.rename(self._path(source), self._path(target)):
            raise LakeError(f"{target}: could not be committed (rename refused)")

    def remove(self, path: str) -> None:
        self._fs.delete(self._path(path), True)


class LocalFiles:
    """Folders on a file system this process sees (Spark Connect's client, where the server writes
    to a disk both share: a local or mounted folder)."""

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def folders(self, path: str) -> list[str]:
        folder = Path(path)
        return sorted(str(child) for child in folder.iterdir() if child.is_dir()) if folder.is_dir() else []

    def touch(self, path: str) -> None:
        Path(path).touch()

    def move(self, source: str, target: str) -> None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)

    def remove(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)


class Lake:
    """The outputs folder `out`: through the driver's Hadoop FileSystem, or (Spark Connect, whose
    client has no driver) through this machine's file system when `out` is a local folder."""

    def __init__(self, spark, out: str):
        self.spark, self.out = spark, out.rstrip("/")
        if getattr(spark, "_jvm", None) is not None:
            self._files: HadoopFiles | LocalFiles = HadoopFiles(spark, self.out)
        elif "://" not in self.out:
            self._files = LocalFiles()
        else:
            raise LakeError(
                f"{out}: on Spark Connect the night is committed by renaming folders on a file system "
                "this machine sees; give a local or mounted --out, or run with --spark-master or spark-submit"
            )

    def finish_interrupted_commits(self) -> None:
        """Roll forward each commit a killed run left half done; remove staging never committed."""
        for staged in self._files.folders(f"{self.out}/_staging"):
            if self._files.exists(f"{staged}/{_COMMITTING}"):
                self._roll_forward(staged)
            self._files.remove(staged)

    def read_prior_cases(self, engine: SparkEngine, as_of: date) -> None:
        """`prior_case_members`: the members of the cases of the latest night before `as_of`."""
        if not self._files.folders(f"{self.out}/abuse_cases"):
            return
        cases = self.spark.read.parquet(f"{self.out}/abuse_cases")
        (latest,) = cases.where(f"as_of < DATE'{as_of.isoformat()}'").agg({"as_of": "max"}).first()
        if latest is None:
            return
        cases.where(f"as_of = DATE'{latest.isoformat()}'").createOrReplaceTempView("prior_abuse_cases")
        engine.execute("INSERT INTO prior_case_members SELECT case_id, unnest(entity_ids) FROM prior_abuse_cases", {})

    def commit(self, staged: str) -> None:
        """Make a staged night visible: the marker, then one rename per table."""
        self._files.touch(f"{staged}/{_COMMITTING}")
        self._roll_forward(staged)
        self._files.remove(staged)

    def _roll_forward(self, staged: str) -> None:
        for folder in self._files.folders(staged):
            table = folder.rsplit("/", 1)[-1]
            if table.startswith("_"):
                continue
            for night in self._files.folders(folder):
                target = f"{self.out}/{table}/{night.rsplit('/', 1)[-1]}"
                if self._files.exists(target):
                    self._files.move(target, f"{staged}/_replaced/{table}")
                self._files.move(night, target)


def write_night(lake: Lake, engine: SparkEngine, as_of: date, run_id: str) -> list[str]:
    """Write every table of the night under `<out>/<table>/as_of=<as_of>/`, staged then committed."""
    staged = f"{lake.out}/_staging/{run_id}"
    for table in NIGHT_TABLES:
        columns = [(name, kind) for name, kind in _COLUMNS[table] if name != "as_of" and not name.startswith("_")]
        engine.spark.table(table).selectExpr(
            *(f"CAST(`{name}` AS {spark_type(_parquet_type(kind))}) AS `{name}`" for name, kind in columns)
        ).write.parquet(f"{staged}/{table}/as_of={as_of.isoformat()}")
    lake.commit(staged)
    return [f"{lake.out}/{table}/as_of={as_of.isoformat()}" for table in NIGHT_TABLES]


def _parquet_type(kind: str) -> str:
    """HUGEINT counts are written as BIGINT, as the DuckDB engine's exports write them."""
    return "BIGINT" if kind in ("HUGEINT", "UHUGEINT") else kind
