"""The warehouse as people's commands open it: read-only in `query`'s sandbox, or for writing
through the copy a run publishes into (jobs/stages/publish.py). A warehouse that cannot be opened
ends the command in one line, exit 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import duckdb

from jobs.errors import PublishError
from jobs.stages.publish import WarehouseBusy, warehouse_for_writing
from jobs.tools.query import QueryError, open_read_only


class WarehouseUnavailable(click.ClickException):
    """The warehouse is missing, unreadable or busy: `refund-recon: <why>`, exit 1."""

    def show(self, file=None) -> None:
        click.echo(f"refund-recon: {self.format_message()}", err=True)


@contextmanager
def reading(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, read-only, in the query sandbox."""
    if not db_path.is_file():
        raise WarehouseUnavailable(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    try:
        con = open_read_only(db_path)
    except QueryError as error:
        raise WarehouseUnavailable(f"cannot open the warehouse: {error}") from None
    try:
        yield con
    finally:
        con.close()


@contextmanager
def writing(db_path: Path, wait_seconds: float, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse's copy, in use, swapped in when the block ends well; `what` is being written
    (a decision, a change), for the waiting and refusal lines."""

    def say_waiting() -> None:
        click.echo(
            f"refund-recon: waiting up to {wait_seconds:g} s: a run is publishing {db_path}, "
            f"or another {what} is being written",
            err=True,
        )

    try:
        with warehouse_for_writing(db_path, wait_seconds, say_waiting) as con:
            yield con
    except WarehouseBusy:
        raise WarehouseUnavailable(
            f"{db_path}: a run is publishing this warehouse, or another {what} is being written; "
            f"waited {wait_seconds:g} s, nothing recorded (try again, or give a longer --wait)"
        ) from None
    except PublishError as error:
        raise WarehouseUnavailable(str(error)) from None
