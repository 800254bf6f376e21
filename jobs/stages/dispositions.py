"""Reviewer decisions on abuse cases: kept in the warehouse, read by every run.

`case_dispositions` is append-only and belongs to the reviewers: a run copies it in to
judge tonight's cases but never writes it, so no decision is lost to a nightly rebuild.
Reviewers add to it one decision at a time (`record_decision`, `decide`) or from a
spreadsheet (`import_decisions`), and take the cases out to one (`export_cases`).
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from jobs.csvsafe import neutralise, restore
from jobs.engine.engine import scalar, warehouse_has

DISPOSITIONS = ("confirmed", "false_positive", "needs_info")
UNDECIDED = ("", "open", "reopened")  # a case nobody has decided, or one to decide again
EXPORT_COLUMNS = (
    "case_id",
    "disposition",
    "reviewer",
    "note",
    "decided_at",
    "disposition_reason",
    "severity",
    "score",
    "entity_ids",
    "signal_codes",
    "refund_count",
    "currency",
    "amount_refunded",
    "amount_at_risk",
    "amounts_by_currency",
    "refund_ids",
    "first_refund_day",
    "last_refund_day",
    "group_id",
    "run_id",
    "as_of",
)
# A decision time must be a real instant: not before this, not later than now plus the skew.
EARLIEST_DECISION = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def copy_reviewer_state(con: duckdb.DuckDBPyConnection) -> None:
    """Fill `case_dispositions`, `list_events` and `prior_case_members` from the attached warehouse,
    if it has them."""
    for table in ("case_dispositions", "list_events"):
        if warehouse_has(con, table):
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM warehouse.{table}")
    if warehouse_has(con, "abuse_cases"):
        con.execute("INSERT INTO prior_case_members SELECT case_id, unnest(entity_ids) FROM warehouse.abuse_cases")


# --- one decision -----------------------------------------------------------------------------


class UnknownCase(LookupError):
    """No case of that id in the latest run's abuse_cases."""


def record_decision(
    con: duckdb.DuckDBPyConnection,
    case_id: str,
    disposition: str,
    reviewer: str,
    note: str | None,
    decided_at: datetime,
) -> bool:
    """Append a decision holding the case's current evidence, inside the caller's transaction.

    If it is the case's latest decision, the latest run's `abuse_cases` row shows it at once.
    Returns whether it is (a decision dated in the past may be followed by a later one).
    """
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {', '.join(DISPOSITIONS)}, not {disposition!r}")
    evidence = con.execute("SELECT refund_ids, signal_codes FROM abuse_cases WHERE case_id = ?", [case_id]).fetchone()
    if evidence is None:
        raise UnknownCase(case_id)
    latest = scalar(con, "SELECT max(decided_at) FROM case_dispositions WHERE case_id = ?", [case_id])
    con.execute(
        "INSERT INTO case_dispositions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [case_id, disposition, reviewer, note or None, decided_at, *evidence],
    )
    if latest is not None and decided_at < latest:
        return False
    con.execute(
        "UPDATE abuse_cases SET disposition = ?, disposition_reason = ?, reviewer = ?, decided_at = ? "
        "WHERE case_id = ?",
        [disposition, note or None, reviewer, decided_at, case_id],
    )
    return True


def decide(
    con: duckdb.DuckDBPyConnection,
    case_id: str,
    disposition: str,
    reviewer: str,
    note: str | None,
    decided_at: datetime | None = None,
) -> bool:
    """Record one decision (made now unless told) in its own transaction."""
    with _transaction(con):
        return record_decision(con, case_id, disposition, reviewer, note, decided_at or _now())


# --- export -----------------------------------------------------------------------------------

_EXPORT_SQL = """
WITH latest_decision AS (
    SELECT * FROM case_dispositions
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY decided_at DESC) = 1
),
per_currency AS (
    SELECT cases.case_id, verdict.currency,
           sum(verdict.refund_amount) AS refunded, sum(verdict.amount_at_risk) AS at_risk
    FROM abuse_cases AS cases, unnest(cases.refund_ids) AS ids(refund_id)
    JOIN refund_verdicts AS verdict USING (refund_id)
    GROUP BY ALL
),
money AS (
    SELECT case_id,
           CASE WHEN count(*) = 1 THEN min(currency) END AS currency,
           CASE WHEN count(*) = 1 THEN min(refunded) END AS amount_refunded,
           CASE WHEN count(*) = 1 THEN min(at_risk) END AS amount_at_risk,
           list(CAST(refunded AS VARCHAR) || ' ' || currency ORDER BY currency) AS amounts_by_currency
    FROM per_currency GROUP BY case_id
)
SELECT cases.case_id, cases.disposition,
       CASE WHEN cases.decided THEN decision.reviewer END,
       CASE WHEN cases.decided THEN decision.note END,
       CASE WHEN cases.decided THEN decision.decided_at END,
       cases.disposition_reason, cases.severity, cases.score, cases.entity_ids, cases.signal_codes,
       cases.refund_count, money.currency, money.amount_refunded, money.amount_at_risk, money.amounts_by_currency,
       cases.refund_ids,
       cases.first_refund_day, cases.last_refund_day, cases.group_id, cases.run_id, cases.as_of
FROM (SELECT *, disposition IN ('confirmed', 'false_positive', 'needs_info') AS decided FROM abuse_cases) AS cases
LEFT JOIN latest_decision AS decision USING (case_id)
LEFT JOIN money USING (case_id)
ORDER BY cases.score DESC, cases.case_id
"""


def export_cases(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Write the latest run's cases and their standing decisions as CSV; return the number of cases.

    UTF-8, lists joined with '; ', times ISO 8601 in UTC; money as numbers in the case's
    `currency` (empty for a case in several currencies: `amounts_by_currency` has each); a cell a
    spreadsheet would take for a formula gets a leading single quote. An open or reopened
    case has no reviewer, note or decided_at: its row waits for a decision.
    """
    rows = con.execute(_EXPORT_SQL).fetchall()
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows([neutralise(_cell(value)) for value in row] for row in rows)
    return len(rows)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_cell(item) for item in value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did; `problems` are the skipped rows, each naming its line."""

    imported: int = 0
    unchanged: int = 0
    undecided: int = 0
    problems: list[str] = field(default_factory=list)


class ImportFileError(Exception):
    """The CSV file as a whole cannot be imported (nothing was)."""


def import_decisions(
    con: duckdb.DuckDBPyConnection, path: Path, default_reviewer: str | None = None, billing_zone: str = "UTC"
) -> ImportReport:
    """Append each decided row of a CSV file (columns case_id, disposition, reviewer, note,
    optional decided_at) as a decision, all in one transaction.

    Rows with no decision (disposition empty, open or reopened) and rows repeating a decision
    already recorded are passed over; bad rows are reported by line and skipped, the good
    ones imported. A naive decided_at is read in `billing_zone`; an empty one means now.
    """
    report, now = ImportReport(), _now()
    with _transaction(con):
        for line, row in _read_rows(path, default_reviewer is not None):
            try:
                outcome = _import_row(con, row, default_reviewer, ZoneInfo(billing_zone), now)
            except (ValueError, UnknownCase) as problem:
                report.problems.append(f"line {line}: {_describe(problem)}")
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _read_rows(path: Path, reviewer_optional: bool):
    """(line where the record starts, {column: cell}) for each non-blank record of the file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            header = [name.strip().lower() for name in next(reader, [])]
            _check_header(path, header, reviewer_optional)
            start = reader.line_num + 1
            for record in reader:
                line, start = start, reader.line_num + 1
                if any(cell.strip() for cell in record):
                    yield line, {name: restore(cell.strip()) for name, cell in zip(header, record, strict=False)}
    except (UnicodeDecodeError, csv.Error) as error:
        raise ImportFileError(f"{path}: not a readable UTF-8 CSV file ({error})") from None


def _check_header(path: Path, header: list[str], reviewer_optional: bool) -> None:
    required = ["case_id", "disposition"] + ([] if reviewer_optional else ["reviewer"])
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFileError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(needs case_id, disposition and reviewer; note and decided_at are optional)"
        )


def _import_row(con, row: dict, default_reviewer: str | None, zone: ZoneInfo, now: datetime) -> str:
    """Record one row; return which ImportReport count it adds to, or raise ValueError."""
    case_id, disposition = row.get("case_id", ""), row.get("disposition", "").lower()
    if not case_id:
        raise ValueError("no case_id")
    if disposition in UNDECIDED:
        return "undecided"
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}")
    reviewer = row.get("reviewer") or default_reviewer
    if not reviewer:
        raise ValueError("no reviewer")
    note = row.get("note") or None
    decided_at = _parse_time(row.get("decided_at", ""), zone, now) or now
    if _already_recorded(con, case_id, disposition, reviewer, note, decided_at):
        return "unchanged"
    record_decision(con, case_id, disposition, reviewer, note, decided_at)
    return "imported"


def _parse_time(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """An ISO 8601 decision time (naive: in `zone`), between EARLIEST_DECISION and now + CLOCK_SKEW."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"decided_at {text!r} is not an ISO 8601 time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        utc = EARLIEST_DECISION - CLOCK_SKEW if moment.year == 1 else now + 2 * CLOCK_SKEW
    if utc < EARLIEST_DECISION:
        raise ValueError(f"decided_at {text!r} is before {EARLIEST_DECISION.date()} (not a real decision time)")
    if utc > now + CLOCK_SKEW:
        raise ValueError(
            f"decided_at {text!r} is in the future (now is {now.isoformat(timespec='seconds')}; "
            f"at most {CLOCK_SKEW.seconds // 60} minutes of clock skew allowed)"
        )
    return moment


def _already_recorded(
    con, case_id: str, disposition: str, reviewer: str, note: str | None, decided_at: datetime
) -> bool:
    """True for a repeat of a recorded decision; ValueError for a different one at the same time."""
    same_time = con.execute(
        "SELECT disposition, reviewer, note FROM case_dispositions WHERE case_id = ? AND decided_at = ?",
        [case_id, decided_at],
    ).fetchall()
    if not same_time:
        return False
    if (disposition, reviewer, note) in same_time:
        return True
    raise ValueError(
        f"case {case_id} already has a different decision at {decided_at.isoformat()}; "
        f"empty decided_at to record a new decision now"
    )


def _describe(problem: Exception) -> str:
    return f"unknown case_id {problem.args[0]!r}" if isinstance(problem, UnknownCase) else str(problem)


# --- helpers ----------------------------------------------------------------------------------


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection):
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _now() -> datetime:
    return datetime.now(UTC)
