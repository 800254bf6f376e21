"""`refund-recon lists`: the block and allow lists the nightly decisions read (issue 15).

    add      put an entity, account or payment fingerprint on the block or allow list
    remove   take one off
    show     the entries standing (expired ones marked), or every change with --history
    export   the standing entries as CSV
    import   entries from such a CSV (all rows or none)

Every change is a row appended to `list_events` in the warehouse (who, when, why, until when);
`list_entries` is the view of the entries standing. A run copies the events in with the
reviewers' decisions (jobs/stages/dispositions.py), so a change made during a run is seen whole by the
next one, never half. A blocked entry holds the pending refunds it matches; an allowed one lifts
their holds, never a decline (docs/decisions.md). Writers take the warehouse as `review decide`
does: a copy written under the write lock and swapped in whole (jobs/stages/publish.py).

Bad input (an unknown list or kind, an empty value, reason or name, an expiry that is not a time
or is in the past) is refused in one line, exit 2, nothing recorded; a missing warehouse or an
entry not on the list, exit 1. A fingerprint is shown masked; `export` writes it in full, for
`import`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import duckdb

from jobs.csvsafe import neutralise, restore
from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.steps import step
from jobs.options import WAIT_OPTION, db_option
from jobs.outputs.masking import mask_id
from jobs.outputs.terminal import visible
from jobs.stages.decisions import LIST_STEPS
from jobs.tools.warehouse import reading, writing

LISTS = ("block", "allow")
KINDS = ("entity", "account", "fingerprint")
CSV_COLUMNS = ("list", "kind", "value", "reason", "who", "added_at", "expires_at")
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


class ListInputError(ValueError):
    """A change that cannot be recorded as given (exit 2)."""


class NotListed(LookupError):
    """A removal of an entry that is not on the list (exit 1)."""


@dataclass(frozen=True)
class Change:
    """One add or remove, as it will be appended to `list_events`."""

    action: str
    list_name: str
    kind: str
    value: str
    reason: str
    who: str
    expires_at: datetime | None = None


def change(
    action: str,
    list_name: str,
    kind: str,
    value: str,
    reason: str | None,
    who: str | None,
    expires: str | None,
    zone: ZoneInfo,
    now: datetime,
) -> Change:
    """A checked Change, or ListInputError naming what is wrong."""
    if list_name not in LISTS:
        raise ListInputError(f"unknown list {list_name!r} (block or allow)")
    if kind not in KINDS:
        raise ListInputError(f"unknown kind {kind!r} (entity, account or fingerprint)")
    for name, text in (("value", value), ("reason", reason), ("who", who)):
        if not (text or "").strip():
            raise ListInputError(f"empty {name}: say {'why' if name == 'reason' else name}")
    if expires and action == "remove":
        raise ListInputError("an expiry goes with an add, not a remove")
    return Change(
        action,
        list_name,
        kind,
        str(value).strip(),
        str(reason).strip(),
        str(who).strip(),
        parse_expiry(expires, zone, now),
    )


def parse_expiry(text: str | None, zone: ZoneInfo, now: datetime) -> datetime | None:
    """An ISO 8601 date (the entry lasts through that billing day) or time (naive: billing time),
    after `now`."""
    if not text:
        return None
    try:
        if len(text.strip()) == 10:
            moment = datetime.combine(date.fromisoformat(text.strip()) + timedelta(days=1), time(0), zone)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ListInputError(f"expiry {text!r} is not an ISO 8601 date or time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if moment <= now:
        raise ListInputError(f"expiry {text!r} is in the past (now is {now.astimezone(zone):{TIME_FORMAT}})")
    return moment


# --- writing ------------------------------------------------------------------------------------


def record(con: duckdb.DuckDBPyConnection, changes: list[Change], now: datetime) -> int:
    """Append the changes to `list_events` of the database `con` uses, in one transaction; return
    how many were recorded (an add repeating the standing entry word for word is passed over)."""
    Runner(DuckDBEngine(con), {}).run(tuple(step(name) for name in LIST_STEPS))
    recorded = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for item in changes:
            standing = con.execute(
                "SELECT reason, expires_at FROM list_entries WHERE list_name = ? AND kind = ? AND value = ?",
                [item.list_name, item.kind, item.value],
            ).fetchone()
            if item.action == "remove" and standing is None:
                raise NotListed(f"{item.kind} {_shown(item.kind, item.value)} is not on the {item.list_name} list")
            if item.action == "add" and standing == (item.reason, item.expires_at):
                continue
            con.execute(
                "INSERT INTO list_events SELECT coalesce(max(event_id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? "
                "FROM list_events",
                [item.action, item.list_name, item.kind, item.value, item.reason, item.who, now, item.expires_at],
            )
            recorded += 1
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return recorded


# --- reading ------------------------------------------------------------------------------------


def standing_entries(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The standing entries, blocks first, each with its expiry."""
    return _rows(
        con,
        "SELECT list_name, kind, value, reason, added_by, added_at, expires_at FROM list_entries "
        "ORDER BY list_name DESC, kind, value",
    )


def history(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every change, oldest first."""
    return _rows(
        con,
        "SELECT event_id, action, list_name, kind, value, reason, who, recorded_at, expires_at "
        "FROM list_events ORDER BY event_id",
    )


def _rows(con, sql: str) -> list[dict]:
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'list_events'").fetchone()[0]:
        return []
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]


def show_lines(entries: list[dict], zone: ZoneInfo, now: datetime) -> list[str]:
    """One line per standing entry; an expired one says it is ignored."""
    if not entries:
        return ["no block or allow entries"]
    lines = []
    for entry in entries:
        expiry = entry["expires_at"]
        until = (
            ""
            if expiry is None
            else f", EXPIRED {_when(expiry, zone)}: ignored"
            if expiry <= now
            else f", until {_when(expiry, zone)}"
        )
        lines.append(
            f"{entry['list_name']:<6}{entry['kind']:<12}{_shown(entry['kind'], entry['value'])}  "
            f"{entry['reason']} ({entry['added_by']}, {_when(entry['added_at'], zone)}{until})"
        )
    return [visible(line) for line in lines]


def history_lines(events: list[dict], zone: ZoneInfo) -> list[str]:
    lines = [
        f"{_when(event['recorded_at'], zone)}  {event['action']:<7}{event['list_name']:<6}{event['kind']:<12}"
        f"{_shown(event['kind'], event['value'])}  {event['reason']} ({event['who']}"
        + (f", until {_when(event['expires_at'], zone)}" if event["expires_at"] else "")
        + ")"
        for event in events
    ]
    return [visible(line) for line in lines] or ["no change recorded"]


def _shown(kind: str, value: str) -> str:
    return mask_id(value) if kind == "fingerprint" else value


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(TIME_FORMAT)


# --- CSV ----------------------------------------------------------------------------------------


def export_entries(entries: list[dict], path: Path) -> None:
    """The standing entries as CSV (times ISO 8601 in UTC, cells safe for spreadsheets)."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            writer.writerow(
                neutralise(_cell(entry[key]))
                for key in ("list_name", "kind", "value", "reason", "added_by", "added_at", "expires_at")
            )


def read_changes(path: Path, zone: ZoneInfo, now: datetime, default_who: str | None) -> list[Change]:
    """The adds of a CSV file with columns list, kind, value, reason, who, expires_at (added_at is
    ignored: an import is made now). Any bad row refuses the file: ListInputError naming its line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            missing = [name for name in ("list", "kind", "value", "reason") if name not in (reader.fieldnames or ())]
            if missing:
                raise ListInputError(f"{path}: missing column(s) {', '.join(missing)}")
            changes = []
            for row in reader:
                cells = {name: restore((cell or "").strip()) for name, cell in row.items() if name}
                try:
                    changes.append(
                        change(
                            "add",
                            cells["list"],
                            cells["kind"],
                            cells["value"],
                            cells["reason"],
                            cells.get("who") or default_who,
                            cells.get("expires_at"),
                            zone,
                            now,
                        )
                    )
                except ListInputError as error:
                    raise ListInputError(f"{path} line {reader.line_num}: {error}") from None
            return changes
    except (UnicodeDecodeError, csv.Error) as error:
        raise ListInputError(f"{path}: not a readable UTF-8 CSV file ({error})") from None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


# --- the command line ---------------------------------------------------------------------------

DB_OPTION = db_option("The DuckDB warehouse.")
who_option = click.option("--who", help="Who makes the change.")
reason_option = click.option("--reason", help="Why (required).")


@click.group("lists")
def lists() -> None:
    """Block and allow entries (entity, account, payment fingerprint) for the pending-refund decisions."""


@lists.command("add")
@click.argument("list_name", metavar="block|allow")
@click.argument("kind", metavar="entity|account|fingerprint")
@click.argument("value")
@reason_option
@who_option
@click.option("--expires", help="Until when: a date (through that billing day) or an ISO 8601 time.")
@DB_OPTION
@WAIT_OPTION
def add_command(list_name, kind, value, reason, who, expires, db_path: Path, wait_seconds: float) -> None:
    """Put VALUE on the block or allow list."""
    _write(
        db_path,
        wait_seconds,
        lambda zone, now: [change("add", list_name, kind, value, reason, who, expires, zone, now)],
        "added",
    )


@lists.command("remove")
@click.argument("list_name", metavar="block|allow")
@click.argument("kind", metavar="entity|account|fingerprint")
@click.argument("value")
@reason_option
@who_option
@DB_OPTION
@WAIT_OPTION
def remove_command(list_name, kind, value, reason, who, db_path: Path, wait_seconds: float) -> None:
    """Take VALUE off the block or allow list."""
    _write(
        db_path,
        wait_seconds,
        lambda zone, now: [change("remove", list_name, kind, value, reason, who, None, zone, now)],
        "removed",
    )


@lists.command("import")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--who-default", help="Who, for rows that name nobody.")
@DB_OPTION
@WAIT_OPTION
def import_command(csv_path: Path, who_default: str | None, db_path: Path, wait_seconds: float) -> None:
    """Add the entries of a CSV file (list, kind, value, reason, who[, expires_at]): all or none."""
    _write(db_path, wait_seconds, lambda zone, now: read_changes(csv_path, zone, now, who_default), "imported")


@lists.command("show")
@click.option("--history", "show_history", is_flag=True, help="Every change ever made, oldest first.")
@DB_OPTION
def show_command(show_history: bool, db_path: Path) -> None:
    """The entries standing now (expired ones marked: the decisions ignore them)."""
    with reading(db_path) as con:
        zone = _billing_zone(con)
        lines = (
            history_lines(history(con), zone)
            if show_history
            else show_lines(standing_entries(con), zone, datetime.now(UTC))
        )
    click.echo("\n".join(lines))


@lists.command("export")
@click.argument("out_path", type=click.Path(dir_okay=False, path_type=Path))
@DB_OPTION
def export_command(out_path: Path, db_path: Path) -> None:
    """Write the standing entries to a CSV file (fingerprints in full: keep it private)."""
    with reading(db_path) as con:
        entries = standing_entries(con)
    try:
        export_entries(entries, out_path)
    except OSError as error:
        _fail(f"{out_path}: cannot write ({error.strerror})")
    click.echo(f"wrote {len(entries)} entries to {out_path}")


def _write(db_path: Path, wait_seconds: float, changes, done: str) -> None:
    """Check the changes (exit 2 on bad input) and record them in the warehouse's copy, swapped in."""
    if not db_path.is_file():
        _fail(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    now = datetime.now(UTC)
    try:
        with reading(db_path) as con:
            checked = changes(_billing_zone(con), now)
        with writing(db_path, wait_seconds, "change") as con:
            count = record(con, checked, now)
    except ListInputError as error:
        _fail(str(error), 2)
    except NotListed as error:
        _fail(str(error))
    click.echo(
        f"{done} {count} of {len(checked)} entries" + ("" if count == len(checked) else " (the others stand as given)")
    )


def _billing_zone(con) -> ZoneInfo:
    row = con.execute("SELECT billing_time_zone FROM runs ORDER BY finished_at DESC LIMIT 1").fetchone()
    return ZoneInfo(row[0] if row and row[0] else "UTC")


def _fail(message: str, exit_code: int = 1):
    click.echo(f"refund-recon: {message}", err=True)
    raise SystemExit(exit_code)
