"""Publishing: move a finished run into the warehouse in one transaction, swapped in whole.

Everything before this step happens in a private in-memory DuckDB; the warehouse is written
only at the end, into a copy of it (`warehouse_attached`), where the run reads what reviewers
decided and writes its results. The latest-run tables are replaced, the history tables and
`runs` are appended to, in one transaction; the copy is then renamed over the warehouse. A run
that fails or is killed leaves the previous night's warehouse as it was, and readers holding
the warehouse open never block it (docs/operations.md, "Readers and writers").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from jobs.engine.engine import duckdb_connection, warehouse_has
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import quoted
from jobs.engine.steps import discover, step
from jobs.errors import PublishError, first_line
from jobs.stages.history import RECORD_VIEWS, prepare_versions_tables, store_delivery, versions_table
from jobs.stages.schemas import EXPORTS

# Tables holding the latest run's view, replaced by each run. (The records themselves live in
# `<stem>_versions`, upserted by jobs/stages/history.py; `purchases` etc. are views of them.)
LATEST_TABLES = (
    "validation_errors",
    "refund_flags",
    "refund_verdicts",
    "abuse_signals",
    "abuse_cases",
    "rule_catalog",
    "signal_catalog",
    "entity_groups",
    "fingerprint_sharing",
    "daily_reconciliation",
    "daily_reconciliation_by_rule",
    "invariant_results",
    "gate_results",
    "pending_refund_decisions",
)
# Tables that keep every run's rows, appended to by each run (the history of the table named).
HISTORY_TABLES = {
    "runs": "run_record",
    "validation_errors_history": "validation_errors",
    "refund_flags_history": "refund_flags",
    "refund_verdicts_history": "refund_verdicts",
    "abuse_signals_history": "abuse_signals",
    "abuse_cases_history": "abuse_cases",
    "daily_reconciliation_history": "daily_reconciliation",
    "daily_reconciliation_by_rule_history": "daily_reconciliation_by_rule",
    "invariant_results_history": "invariant_results",
    "gate_results_history": "gate_results",
    "pending_refund_decisions_history": "pending_refund_decisions",
}


# Created in the warehouse if missing, never replaced by a run: reviewers own the first, and
# `refund-recon lists` the list events.
WAREHOUSE_DEFINITIONS = (
    "history/records_valid_on",
    "outputs/case_dispositions",
    "outputs/signal_precision",
    "decisions/list_events",
    "decisions/list_entries",
    *(view.name for view in discover("views")),
)
# What the definitions may read: the tables a run publishes.
WAREHOUSE_TABLES = (*LATEST_TABLES, *HISTORY_TABLES, *(versions_table(export) for export in EXPORTS.values()))


def output_folder(db_path: Path, run_id: str, mode: str) -> Path:
    """Where a run's report and exports go: next to the warehouse for a night delivered from
    files; for a replay its own `replays/<run_id>/` beside the warehouse (created here), so a
    replay never overwrites what its night published (docs/operations.md)."""
    if mode != "replay":
        return db_path.parent
    folder = db_path.parent / "replays" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# How long a run's publish waits for a reviewer's write (a decision, an import: seconds) to end.
PUBLISH_WAIT_SECONDS = 600


class WarehouseBusy(PublishError):
    """Another writer held the warehouse for longer than this one would wait."""


@contextmanager
def warehouse_attached(
    con: duckdb.DuckDBPyConnection,
    db_path: Path,
    wait_seconds: float = PUBLISH_WAIT_SECONDS,
    waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Attach a copy of the warehouse as `warehouse` for writing; swap it in if the block succeeds.

    Under the write lock (`write_lock`), `<db>` is copied to `<db>.next`, the block writes the
    copy, which is checkpointed, synced and renamed over `<db>` (`os.replace`: atomic). Readers
    holding `<db>` open keep the night they opened (their file lives on while open) and never
    block this writer; new connections see the new night. Failing or killed at any point, the
    writer leaves `<db>` as it was. A read-only attachment of `con` (the run's history) is dropped.
    """
    copy = next_path(db_path)
    with write_lock(db_path, wait_seconds, waiting):
        _copy_warehouse(con, db_path, copy)
        try:
            _attach_for_writing(con, copy)
            yield
            _write_into_file(con, db_path, copy)
            _swap(copy, db_path)
        except BaseException:
            _detach_quietly(con)
            _remove_copy(copy)
            raise


@contextmanager
def warehouse_for_writing(
    db_path: Path, wait_seconds: float, waiting: Callable[[], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose default database is the warehouse's copy (`warehouse_attached`),
    swapped in when the block ends well: how a command other than a run writes the warehouse."""
    con = duckdb.connect()
    try:
        with warehouse_attached(con, db_path, wait_seconds, waiting):
            con.execute("USE warehouse")
            try:
                yield con
            finally:
                con.execute("USE memory")  # the copy is detached on the way out
    finally:
        con.close()


def next_path(db_path: Path) -> Path:
    """`<db>.next`: where a writer builds the next warehouse."""
    return db_path.with_name(db_path.name + ".next")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _copy_warehouse(con: duckdb.DuckDBPyConnection, db_path: Path, copy: Path) -> None:
    """Copy `<db>` (and a WAL an older version left beside it) to `copy`, after removing what a
    killed writer left there. The copy is taken holding `<db>` read-only, so no writer outside
    refund-recon can change it meanwhile. No `<db>` yet: the copy starts empty."""
    _detach_quietly(con)
    _remove_copy(copy)
    if not db_path.exists():
        return
    try:
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(db_path)])
    except duckdb.Error as error:
        raise PublishError(f"{db_path}: cannot open the warehouse ({first_line(error)})") from None
    try:
        shutil.copyfile(db_path, copy)
        if _wal(db_path).exists():
            shutil.copyfile(_wal(db_path), _wal(copy))
    except OSError as error:
        _remove_copy(copy)
        raise PublishError(
            f"{db_path}: cannot copy the warehouse to {copy} ({error.strerror}); warehouse unchanged"
        ) from None
    finally:
        _detach_quietly(con)


def _attach_for_writing(con: duckdb.DuckDBPyConnection, copy: Path) -> None:
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        con.execute("ATTACH ? AS warehouse", [str(copy)])
    except (OSError, duckdb.Error) as error:
        raise PublishError(
            f"{copy}: cannot open the warehouse copy ({first_line(error)}); warehouse unchanged"
        ) from None


def _write_into_file(con: duckdb.DuckDBPyConnection, db_path: Path, copy: Path) -> None:
    """Checkpoint the copy's committed changes into its file and close it; it then stands alone."""
    try:
        con.execute("CHECKPOINT warehouse")
        con.execute("DETACH warehouse")
    except duckdb.Error as error:
        raise PublishError(
            f"{db_path}: writing the night into {copy} failed ({first_line(error)}); warehouse unchanged"
        ) from None
    if _wal(copy).exists() and _wal(copy).stat().st_size:
        raise PublishError(f"{db_path}: {_wal(copy)} was left after the checkpoint; warehouse unchanged")


def _swap(copy: Path, db_path: Path) -> None:
    """Rename the synced copy over `<db>` and make the rename durable."""
    try:
        _fsync(copy)
        os.replace(copy, db_path)
    except OSError as error:
        raise PublishError(
            f"{db_path}: cannot put {copy} in its place ({error.strerror}); warehouse unchanged"
        ) from None
    _wal(copy).unlink(missing_ok=True)
    _wal(db_path).unlink(missing_ok=True)  # an older version's WAL: it is in the copy now
    try:
        _fsync(db_path.parent)
    except OSError as error:
        raise PublishError(
            f"{db_path}: the warehouse is published, but syncing its folder failed ({error.strerror})"
        ) from None


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_copy(copy: Path) -> None:
    for path in (copy, _wal(copy)):
        path.unlink(missing_ok=True)


def _detach_quietly(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # nothing attached, or the error on the way out is the one to report
        con.execute("DETACH warehouse")


@contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """Hold `.<warehouse name>.lock` beside the warehouse for a whole run: one run at a time.

    It refuses a second run at once, before it spends the night's work. The OS frees it when
    the process ends, however.
    """
    with _os_lock(db_path, ".lock", 0, None, "another run is writing this warehouse; refused"):
        yield


@contextmanager
def write_lock(db_path: Path, wait_seconds: float, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold `.<warehouse name>.write.lock` while writing the warehouse: one writer at a time (a
    run's publish, a reviewer's decisions), so no write is lost to another's swap. Wait up to
    `wait_seconds` for it (calling `waiting()` once if it must), then raise WarehouseBusy."""
    refusal = f"another writer held the warehouse for {wait_seconds:g} s (a run publishing, or a review decision)"
    with _os_lock(db_path, ".write.lock", wait_seconds, waiting, refusal):
        yield


@contextmanager
def _os_lock(
    db_path: Path, suffix: str, wait_seconds: float, waiting: Callable[[], None] | None, refusal: str
) -> Iterator[None]:
    """An exclusive flock on `.<warehouse name><suffix>`, taken within `wait_seconds`."""
    lock_path = db_path.parent / f".{db_path.name}{suffix}"
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        stream = lock_path.open("a")
    except OSError as error:
        raise PublishError(f"{db_path}: cannot take the lock {lock_path} ({error.strerror})") from None
    with stream:
        deadline = time.monotonic() + wait_seconds
        while not _locked(stream):
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"{db_path}: {refusal}")
            if waiting is not None:
                waiting()
                waiting = None
            time.sleep(0.05)
        yield


def _locked(stream) -> bool:
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _drop_record_tables_of_old_warehouses(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses written before records had history held them as tables; they are views now."""
    for name in RECORD_VIEWS:
        if warehouse_has(con, name):
            con.execute(f"DROP TABLE warehouse.{name}")


def _evolve_history(con: duckdb.DuckDBPyConnection, source: str, history: str) -> None:
    """A history keeps up with tonight's table: a column it lacks (a rule added since: its
    at_risk_<code>) is added, empty for earlier runs; a column tonight holds in a wider type
    (sums widened to DECIMAL(38,2)) is widened."""
    kept = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {history})").fetchall())
    for name, sql_type in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {source})").fetchall():
        if name not in kept:
            con.execute(f"ALTER TABLE {history} ADD COLUMN {quoted(name)} {sql_type}")
        elif kept[name] != sql_type and kept[name].startswith("DECIMAL") and sql_type.startswith("DECIMAL"):
            con.execute(f"ALTER TABLE {history} ALTER COLUMN {quoted(name)} TYPE {sql_type}")


def publish(runner: Runner) -> None:
    """Write the run's tables into the attached warehouse, atomically."""
    con = duckdb_connection(runner.engine)
    try:
        con.execute("BEGIN TRANSACTION")
        _drop_record_tables_of_old_warehouses(con)
        prepare_versions_tables(con)
        if runner.params["run_mode"] == "delivery":
            store_delivery(runner, con)
        for table in LATEST_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE warehouse.{table} AS SELECT * FROM {table}")
        for history, source in HISTORY_TABLES.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS warehouse.{history} AS FROM {source} LIMIT 0")
            _evolve_history(con, source, f"warehouse.{history}")
            con.execute(f"INSERT INTO warehouse.{history} BY NAME FROM {source}")
        con.execute("USE warehouse")  # the reviewers' table and the views live in, and read, the warehouse
        Runner(runner.engine, runner.params, provided=WAREHOUSE_TABLES).run(
            tuple(step(name) for name in WAREHOUSE_DEFINITIONS)
        )
        con.execute("USE memory")
        con.execute("COMMIT")
    except duckdb.Error as error:
        with contextlib.suppress(duckdb.TransactionException):  # the failed COMMIT already ended it
            con.execute("ROLLBACK")
        con.execute("USE memory")
        raise PublishError(f"publishing failed, warehouse unchanged ({first_line(error)})") from None
