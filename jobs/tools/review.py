"""`refund-recon review`: work the abuse cases of the latest run in the terminal (issue 3).

    list     open cases (open, reopened, needs_info), largest expected loss first; --all or
             --status, --signal, --min-score, --pending filter, --sort loss|score|money orders,
             --limit pages (20 in a table); a table as wide as the terminal, or --format csv|json
    show     one case: header, decisions, signals with their evidence (what a signal's entities
             share once), entities and accounts,
             refunds with verdicts, and a timeline of the group in billing time
    decide   record a disposition (confirmed, false_positive, needs_info)
    export   the cases and their standing decisions as CSV, for spreadsheets
    import   decisions from such a CSV

Readers open the warehouse read-only in the sandbox `refund-recon query` uses; `decide` and
`import` write in one transaction, into a copy of the warehouse swapped in whole (as a run
publishes, jobs/stages/publish.py): an analyst holding the warehouse open never blocks them, and a run
publishing makes them wait (`--wait`, then refused: nothing recorded). A payment fingerprint is
only ever shown masked, and control characters in the data are printed as visible escapes
(jobs/outputs/terminal.py). Exit code 1 when the warehouse is missing or busy, the case unknown,
or an imported row was bad (the good rows are imported).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.steps import step
from jobs.options import WAIT_OPTION, db_option
from jobs.outputs import masking
from jobs.outputs.terminal import visible
from jobs.stages import dispositions
from jobs.tools.query import FORMATS, render
from jobs.tools.warehouse import reading, writing

OPEN = ("open", "reopened", "needs_info")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DB_OPTION = db_option("The DuckDB warehouse.")


@click.group()
def review() -> None:
    """Review the abuse cases of the latest run and record decisions."""


# --- list -------------------------------------------------------------------------------------

STATUSES = OPEN + tuple(disposition for disposition in dispositions.DISPOSITIONS if disposition not in OPEN)
LIST_LIMIT = 20  # cases a table shows unless --limit says otherwise (csv and json: all of them)
# --sort: what comes first. Currencies are not converted: a case counts by its largest amount.
SORTS = {
    "loss": "coalesce(losses.top_amount, 0) DESC",
    "score": "cases.score DESC",
    "money": "coalesce(refunded.top_amount, 0) DESC",
}
SORTED_COLUMN = {"loss": "expected loss", "score": "score", "money": "refunded"}  # a table always shows it

# The review queue: per case, the money refunded on its refunds and its expected loss (score / 100
# x the refunds of its entities pending or paid), both per currency, the pending refunds it holds
# (pending_refund_decisions) and the days since it was first raised.
_QUEUE_SQL = """
WITH stake AS (
    SELECT cases.case_id, verdict.currency,
           CAST(CAST(cases.score AS DECIMAL(4,1)) * sum(verdict.refund_amount) / 100 AS DECIMAL(38,2)) AS amount
    FROM abuse_cases AS cases, unnest(cases.entity_ids) AS members(entity_id)
    JOIN refund_verdicts AS verdict USING (entity_id)
    WHERE verdict.refund_status IN ('pending', 'paid')
    GROUP BY cases.case_id, cases.score, verdict.currency
),
losses AS (
    SELECT case_id, list({'currency': currency, 'amount': amount} ORDER BY amount DESC, currency) AS amounts,
           max(amount) AS top_amount
    FROM stake GROUP BY case_id
),
case_refunds AS (
    SELECT cases.case_id, verdict.currency, sum(verdict.refund_amount) AS amount
    FROM abuse_cases AS cases, unnest(cases.refund_ids) AS ids(refund_id)
    JOIN refund_verdicts AS verdict USING (refund_id)
    GROUP BY cases.case_id, verdict.currency
),
refunded AS (
    SELECT case_id, list({'currency': currency, 'amount': amount} ORDER BY currency) AS amounts,
           max(amount) AS top_amount
    FROM case_refunds GROUP BY case_id
),
held AS (
    SELECT case_id, count(*) AS held FROM {decisions} WHERE decision = 'hold' GROUP BY case_id
),
raised AS (
    SELECT case_id, min(as_of) AS first_seen FROM abuse_cases_history GROUP BY case_id
)
SELECT cases.case_id, cases.severity, cases.score, cases.entity_ids, cases.signal_codes, cases.refund_count,
       coalesce(refunded.amounts, []) AS refunded, cases.disposition, cases.disposition_reason,
       coalesce(losses.amounts, []) AS expected_loss, coalesce(held.held, 0) AS held_refunds,
       cases.as_of - coalesce(raised.first_seen, cases.as_of) AS days_open
FROM abuse_cases AS cases
LEFT JOIN losses USING (case_id)
LEFT JOIN refunded USING (case_id)
LEFT JOIN held USING (case_id)
LEFT JOIN raised USING (case_id)
WHERE list_contains(?, cases.disposition)
  AND (NOT ? OR coalesce(held.held, 0) > 0)
  AND cases.score >= ?
  AND (len(?::VARCHAR[]) = 0 OR list_has_any(cases.signal_codes, ?::VARCHAR[]))
ORDER BY {order}, cases.score DESC, coalesce(losses.top_amount, 0) DESC, cases.case_id
"""
_NO_DECISIONS = "(SELECT NULL::VARCHAR AS case_id, NULL::VARCHAR AS decision WHERE false)"


@review.command("list")
@DB_OPTION
@click.option("--all", "show_all", is_flag=True, help="Cases of every status (open ones only by default).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only cases of this status (repeat for several).",
)
@click.option(
    "--signal",
    "signals",
    multiple=True,
    metavar="CODE",
    help="Only cases with this signal (repeat for any of several).",
)
@click.option("--min-score", default=0.0, type=click.FloatRange(0, 100), help="Only cases scoring at least this.")
@click.option("--pending", "holding_only", is_flag=True, help="Only cases holding pending refunds back.")
@click.option(
    "--sort",
    "sort",
    default="loss",
    show_default=True,
    type=click.Choice(tuple(SORTS)),
    help="Largest expected loss, highest score, or most money refunded first.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help=f"Cases to list, 0 for all [default: {LIST_LIMIT} in a table, all as csv or json].",
)
@click.option(
    "--format",
    "output_format",
    default="table",
    show_default=True,
    type=click.Choice(FORMATS),
    help="A table fitting the terminal's width (COLUMNS), or every field as CSV or JSON.",
)
def list_command(
    db_path: Path,
    show_all: bool,
    statuses: tuple[str, ...],
    signals: tuple[str, ...],
    min_score: float,
    holding_only: bool,
    sort: str,
    limit: int | None,
    output_format: str,
) -> None:
    """Open cases of the latest run, largest expected loss first."""
    if show_all and statuses:
        raise click.UsageError("--all and --status cannot be combined (--all lists every status)")
    with _warehouse(db_path) as con:
        codes = _signal_codes(con, signals)
        decisions = "pending_refund_decisions" if _has_table(con, "pending_refund_decisions") else _NO_DECISIONS
        cursor = con.execute(
            _QUEUE_SQL.replace("{decisions}", decisions).replace("{order}", SORTS[sort]),
            [list(STATUSES if show_all else statuses or OPEN), holding_only, min_score, codes, codes],
        )
        columns, rows = [column[0] for column in cursor.description], cursor.fetchall()
        shown = rows if limit == 0 else rows[: limit or (LIST_LIMIT if output_format == "table" else len(rows))]
        more = len(rows) - len(shown)
        if output_format == "table":
            title = f"{len(rows)} {_listed_kind(show_all, statuses, codes, min_score, holding_only)}, {_run_label(con)}"
            _print_table(con, title, shown, more, SORTED_COLUMN[sort])
        else:
            _print_records(con, columns, shown, output_format)
            if more:
                click.echo(f"refund-recon: {more} more case(s) not listed (--limit 0 lists them all)", err=True)


def _has_table(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0] > 0


def _signal_codes(con, asked: tuple[str, ...]) -> list[str]:
    """The signal codes asked for, upper-cased; a code the catalogue does not hold is a usage error."""
    known = [code for (code,) in con.execute("SELECT signal_code FROM signal_catalog ORDER BY signal_code").fetchall()]
    for code in (code.upper() for code in asked):
        if code not in known:
            raise click.UsageError(f"no signal {code} (known: {', '.join(known)})")
    return [code.upper() for code in asked]


def _listed_kind(
    show_all: bool, statuses: tuple[str, ...], codes: list[str], min_score: float, holding_only: bool
) -> str:
    """What was listed, in words: "open case(s) with REFUND_VELOCITY, score >= 60"."""
    kind = "" if show_all else " or ".join(statuses) + " " if statuses else "open "
    filters = [f"with {' or '.join(codes)}"] if codes else []
    filters += [f"score >= {min_score:g}"] if min_score else []
    filters += ["holding pending refunds"] if holding_only else []
    return f"{kind}case(s)" + (" " + ", ".join(filters) if filters else "")


# Table columns: header, and whether it is cut with … to fit (else shown whole or left out).
_LIST_COLUMNS = (
    ("case", False),
    ("severity", False),
    ("score", False),
    ("entities", True),
    ("signals", True),
    ("refunds", False),
    ("refunded", False),
    ("disposition", False),
    ("expected loss", False),
    ("held", False),
    ("days open", False),
)
# Left out in this order on a narrow terminal until the rest fit; case, score and expected loss stay.
_LEAVE_OUT = ("refunds", "severity", "entities", "refunded", "disposition", "days open", "held", "signals")
_CUT_MIN_WIDTH = 12  # a column cut to fit keeps at least this many characters


def _print_table(con, title: str, rows: list[tuple], more: int, sorted_by: str) -> None:
    """The cases as a table as wide as the terminal, a reopened case followed by why."""
    width = shutil.get_terminal_size().columns
    cells = [
        [
            case_id,
            severity,
            f"{score:.1f}",
            _short(entities),
            ", ".join(signals),
            str(count),
            _money(refunded),
            disposition,
            _money(loss),
            str(held),
            str(days),
        ]
        for case_id, severity, score, entities, signals, count, refunded, disposition, _, loss, held, days in rows
    ]
    reasons = [f"    reopened: {row[8]}" if row[7] == "reopened" else "" for row in rows]
    safe = _sanitiser(con, [title, *reasons, *(cell for row in cells for cell in row)])
    lines = _rendered(Text(safe(title)), width)
    if rows:
        table = _case_table([[safe(cell) for cell in row] for row in cells], width, sorted_by)
        header, *row_lines = _rendered(table, width)
        lines.append(header)
        for line, reason in zip(row_lines, reasons, strict=True):
            lines += [line] + (_rendered(_cut(safe(reason)), width) if reason else [])
    if more:
        lines.append(f"… {more} more (--limit 0 lists them all)")
    for line in lines:
        click.echo(line)


def _case_table(cells: list[list[str]], width: int, sorted_by: str) -> Table:
    """A borderless table of the columns that fit in `width`, long cells cut with …."""
    kept = _fitting_columns(cells, width, sorted_by)
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    for index in kept:
        header, cut = _LIST_COLUMNS[index]
        table.add_column(
            _cut(header), no_wrap=not cut, min_width=min(_CUT_MIN_WIDTH, _natural_width(cells, index)) if cut else None
        )
    for row in cells:
        table.add_row(*(_cut(row[index]) for index in kept))
    return table


def _fitting_columns(cells: list[list[str]], width: int, sorted_by: str) -> list[int]:
    """The columns to show: every one, less those left out first on a narrow terminal until the rest fit.

    The column the list is sorted by stays. Disposition goes early when every case listed has
    the same one (the default list: mostly `open`), late, just before signals, when they differ.
    """
    headers = [header for header, _ in _LIST_COLUMNS]
    order = [header for header in _LEAVE_OUT if header != sorted_by]
    if len({row[headers.index("disposition")] for row in cells}) > 1:
        order.remove("disposition")
        order.insert(order.index("signals"), "disposition")

    def least(index: int) -> int:
        natural = _natural_width(cells, index)
        return min(natural, _CUT_MIN_WIDTH) if _LIST_COLUMNS[index][1] else natural

    kept = list(range(len(_LIST_COLUMNS)))
    for header in order:
        if sum(least(index) for index in kept) + 2 * (len(kept) - 1) <= width:
            break
        kept.remove(headers.index(header))
    return kept


def _natural_width(cells: list[list[str]], index: int) -> int:
    return max(cell_len(text) for text in [_LIST_COLUMNS[index][0], *(row[index] for row in cells)])


def _cut(text: str) -> Text:
    """One line of text, cut with … where it does not fit."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def _rendered(renderable, width: int) -> list[str]:
    """What rich prints for `renderable` on a terminal `width` wide, as plain lines."""
    console = Console(width=width, color_system=None, file=io.StringIO(), highlight=False, emoji=False, markup=False)
    with console.capture() as capture:
        console.print(renderable)
    return [line.rstrip() for line in capture.get().splitlines()]


def _money(amounts: list[dict]) -> str:
    return "; ".join(f"{item['amount']:,.2f} {item['currency']}" for item in amounts)


def _print_records(con, columns: list[str], rows: list[tuple], output_format: str) -> None:
    """Every field of the cases as CSV (cells neutralised, as the exports) or JSON, fingerprints masked."""
    money = ("refunded", "expected_loss")
    if output_format == "csv":  # amounts as "1198.00 CNY" (per currency, '; ' between)
        rows = [
            tuple(
                "; ".join(f"{item['amount']} {item['currency']}" for item in value) if name in money else value
                for name, value in zip(columns, row, strict=True)
            )
            for row in rows
        ]
    text = render(columns, rows, output_format)
    click.echo(masking.masker_for(con, [text], identifiers=False).text(text), nl=False)


# --- show -------------------------------------------------------------------------------------


@review.command("show")
@click.argument("case_id")
@DB_OPTION
def show_command(case_id: str, db_path: Path) -> None:
    """Everything about one case: evidence, entities, refunds and a timeline."""
    with _warehouse(db_path) as con:
        case = _case(con, case_id)
        zone = _billing_zone(con)
        sections = (
            _header(con, case),
            _decisions(con, case_id, zone),
            _signals(con, case),
            _entities(con, case, zone),
            _refunds(con, case, zone),
            _timeline(con, case, zone),
        )
        _print(con, [line for section in sections for line in (*section, "")])


def _header(con, case: dict) -> list[str]:
    amounts = _amounts(con).get(case["case_id"], {})
    lines = [
        f"Case {case['case_id']}  group {case['group_id']}  ({_run_label(con)})",
        f"  score {case['score']:.1f}  severity {case['severity']}  disposition {case['disposition']}",
        f"  refunds {case['refund_count']}  refunded {amounts.get('refunded', '-')}  "
        f"at risk {amounts.get('at_risk', '-')}  from {case['first_refund_day']} to {case['last_refund_day']}",
        f"  signals {', '.join(case['signal_codes'])}",
        f"  entities {', '.join(case['entity_ids'])}",
    ]
    if case["disposition_reason"]:
        lines.append(f"  reason: {case['disposition_reason']}")
    return lines


def _decisions(con, case_id: str, zone: ZoneInfo) -> list[str]:
    rows = con.execute(
        "SELECT decided_at, disposition, reviewer, note FROM case_dispositions WHERE case_id = ? ORDER BY decided_at",
        [case_id],
    ).fetchall()
    lines = ["Decisions"]
    lines += [
        f"  {_when(at, zone)}  {disposition} by {reviewer}" + (f": {note}" if note else "")
        for at, disposition, reviewer, note in rows
    ]
    return lines if rows else [*lines, "  none yet"]


def _signals(con, case: dict) -> list[str]:
    """Each signal once, with the evidence all its entities share once, then what differs under
    the entities it belongs to (LINKED_ENTITIES fires for every entity of the group)."""
    rows = con.execute(
        "SELECT signal.signal_code, catalog.summary, catalog.weight, signal.entity_id, signal.refund_ids, "
        "signal.evidence FROM abuse_signals AS signal LEFT JOIN signal_catalog AS catalog USING (signal_code) "
        "WHERE signal.group_id = ? ORDER BY catalog.position, signal.signal_code, signal.entity_id",
        [case["group_id"]],
    ).fetchall()
    lines = ["Signals"]
    for (code, summary, weight), fired in groupby(rows, key=lambda row: row[:3]):
        evidence = {entity: _evidence_blocks(refund_ids, _parse_json(text)) for *_, entity, refund_ids, text in fired}
        shared = [
            block for block in next(iter(evidence.values())) if all(block in blocks for blocks in evidence.values())
        ]
        lines.append(f"  {code}  {_entities_label(list(evidence))}  weight {weight}  ({summary})")
        lines += ["    " + line for block in shared for line in block[1]]
        apart: dict[tuple, list[str]] = {}  # evidence not shared by all -> the entities whose it is
        for entity, blocks in evidence.items():
            apart.setdefault(tuple(block for block in blocks if block not in shared), []).append(entity)
        for own, entities in apart.items():
            if own:
                lines.append(f"    {_entities_label(entities)}:")
                lines += ["      " + line for block in own for line in block[1]]
    return lines


def _evidence_blocks(refund_ids: list[str], evidence) -> list[tuple[str | None, tuple[str, ...]]]:
    """A signal's refunds and each key of its evidence as (key, lines), the refunds under key None."""
    fields = evidence if isinstance(evidence, dict) else {"evidence": evidence}
    return [(None, (f"refunds: {', '.join(refund_ids) or '-'}",))] + [
        (key, tuple(_evidence_lines({key: item}))) for key, item in fields.items()
    ]


def _entities_label(entities: list[str]) -> str:
    return ("entity " if len(entities) == 1 else "entities ") + ", ".join(entities)


def _entities(con, case: dict, zone: ZoneInfo) -> list[str]:
    rows = con.execute(_ENTITIES_SQL, [case["group_id"]]).fetchall()
    lines = ["Entities and accounts"]
    for entity, accounts, instruments, shared in rows:
        lines.append(f"  {entity}")
        for account, status, reason, since in accounts or []:
            state = f"{status} ({reason or 'no reason'}) since {_when(since, zone)}" if status else "no status change"
            lines.append(f"    account {account}: {state}")
        lines.append(f"    payment fingerprints: {', '.join(instruments or []) or '-'}")
        for fingerprint, entity_ids, links in shared or []:
            how = "links" if links else "too widely shared to link"
            lines.append(f"    shares {fingerprint} with {', '.join(e for e in entity_ids if e != entity)} ({how})")
    return lines


def _refunds(con, case: dict, zone: ZoneInfo) -> list[str]:
    rows = con.execute(_REFUNDS_SQL, [case["group_id"]]).fetchall()
    table = [
        (
            "*" if refund_id in case["refund_ids"] else "",
            refund_id,
            order_id,
            account,
            entity,
            _when(requested, zone),
            status,
            f"{amount} {currency}",
            verdict,
            ", ".join(codes) or "-",
            f"{at_risk} {currency}",
        )
        for refund_id, order_id, account, entity, requested, status, amount, currency, verdict, codes, at_risk in rows
    ]
    header = (
        "",
        "refund",
        "order",
        "account",
        "entity",
        "requested",
        "status",
        "amount",
        "verdict",
        "rules",
        "at risk",
    )
    return ["Refunds of the group (* = evidence of this case)"] + ["  " + line for line in _table(header, table)]


def _timeline(con, case: dict, zone: ZoneInfo) -> list[str]:
    """The case's events as the latest run saw them (sql/report/case_timeline.sql, as in the report)."""
    (run_id,) = con.execute("SELECT run_id FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1").fetchone()
    timeline = step("report/case_timeline")
    # What it reads comes with every warehouse holding cases (`_warehouse` checked that).
    Runner(DuckDBEngine(con), {"run_id": run_id}, provided=timeline.reads).run([timeline])
    rows = con.execute(
        "SELECT happened_at, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY happened_at, event_order, ref",
        [case["case_id"]],
    ).fetchall()
    lines = [f"Timeline (billing time, {zone.key})"]
    return lines + [f"  {_when(at, zone)}  {event:<18} {detail}" for at, event, detail in rows]


# --- decide, export, import -------------------------------------------------------------------


@review.command("decide")
@click.argument("case_id")
@click.option("--disposition", required=True, type=click.Choice(dispositions.DISPOSITIONS))
@click.option("--reviewer", required=True, help="Who decides.")
@click.option("--note", help="Why.")
@DB_OPTION
@WAIT_OPTION
def decide_command(
    case_id: str, disposition: str, reviewer: str, note: str | None, db_path: Path, wait_seconds: float
) -> None:
    """Record a disposition of a case, made now."""
    with _warehouse(db_path, write_wait=wait_seconds) as con:
        try:
            dispositions.decide(con, case_id, disposition, reviewer, note)
        except dispositions.UnknownCase:
            _fail(f"no case {case_id} in the latest run (see `refund-recon review list --all`)")
    click.echo(f"{case_id}: {disposition} by {reviewer}")


@review.command("export")
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The CSV file to write."
)
@DB_OPTION
def export_command(out_path: Path, db_path: Path) -> None:
    """Write the cases with their current disposition to a CSV file."""
    with _warehouse(db_path) as con:
        try:
            count = dispositions.export_cases(con, out_path)
        except OSError as error:
            _fail(f"{out_path}: cannot write ({error.strerror})")
    click.echo(f"{count} case(s) written to {out_path}")


@review.command("import")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reviewer-default", help="Reviewer for rows that name none.")
@DB_OPTION
@WAIT_OPTION
def import_command(csv_path: Path, reviewer_default: str | None, db_path: Path, wait_seconds: float) -> None:
    """Record the decisions of a CSV file (case_id, disposition, reviewer[, note, decided_at]).

    Bad rows are reported with their line and skipped; the good ones are imported, and the
    exit code is 1 if any row was bad.
    """
    with _warehouse(db_path, write_wait=wait_seconds) as con:
        try:
            report = dispositions.import_decisions(con, csv_path, reviewer_default, _billing_zone(con).key)
        except dispositions.ImportFileError as error:
            _fail(str(error))
    click.echo(
        f"{report.imported} decision(s) imported, {report.unchanged} already recorded, "
        f"{report.undecided} row(s) without a decision, {len(report.problems)} bad row(s) skipped"
    )
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    if report.problems:
        raise SystemExit(1)


# --- the warehouse ----------------------------------------------------------------------------


@contextmanager
def _warehouse(db_path: Path, write_wait: float | None = None):
    """A connection to an existing warehouse with cases, or a one-line message and exit 1.

    With `write_wait` (seconds to wait for another writer) the connection writes the warehouse.
    """
    if not db_path.is_file():
        _fail(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    with reading(db_path) if write_wait is None else writing(db_path, write_wait, "decision") as con:
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not {"abuse_cases", "case_dispositions", "runs"} <= tables:
            _fail(f"{db_path}: no abuse cases in this warehouse (run `refund-recon run` first)")
        if write_wait is None:
            masking.create_known_ids(con)  # the fingerprints `_print` masks
        yield con


def _case(con, case_id: str) -> dict:
    cursor = con.execute("SELECT * FROM abuse_cases WHERE case_id = ?", [case_id])
    row = cursor.fetchone()
    if row is None:
        _fail(f"no case {case_id} in the latest run (see `refund-recon review list --all`)")
    return dict(zip([column[0] for column in cursor.description], row, strict=False))


def _run_label(con) -> str:
    rows = con.execute("SELECT run_id, as_of FROM runs ORDER BY finished_at DESC LIMIT 1").fetchall()
    return f"run {rows[0][0]} as of {rows[0][1]}" if rows else "no run yet"


def _billing_zone(con) -> ZoneInfo:
    row = con.execute("SELECT billing_time_zone FROM runs ORDER BY finished_at DESC LIMIT 1").fetchone()
    return ZoneInfo(row[0] if row and row[0] else "UTC")


def _amounts(con) -> dict[str, dict[str, str]]:
    """Per case, the money refunded and at risk, summed per currency ("1,999.00 CNY; 5.00 USD")."""
    rows = con.execute(
        "SELECT cases.case_id, verdict.currency, sum(verdict.refund_amount), sum(verdict.amount_at_risk) "
        "FROM abuse_cases AS cases, unnest(cases.refund_ids) AS ids(refund_id) "
        "JOIN refund_verdicts AS verdict USING (refund_id) GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    amounts: dict[str, dict[str, str]] = {}
    for case_id, currency, refunded, at_risk in rows:
        entry = amounts.setdefault(case_id, {})
        for key, value in (("refunded", refunded), ("at_risk", at_risk)):
            entry[key] = "; ".join(filter(None, [entry.get(key), f"{value:,.2f} {currency}"]))
    return amounts


_ENTITIES_SQL = """
WITH members AS (SELECT entity_id FROM entity_groups WHERE group_id = ?),
accounts AS (
    SELECT DISTINCT purchase.entity_id, purchase.account_id FROM purchases AS purchase JOIN members USING (entity_id)
),
status_now AS (
    SELECT account_id, status, reason, effective_at FROM account_status
    QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY effective_at DESC) = 1
)
SELECT members.entity_id,
       (SELECT list((accounts.account_id, status_now.status, status_now.reason, status_now.effective_at)
                    ORDER BY accounts.account_id)
        FROM accounts LEFT JOIN status_now USING (account_id) WHERE accounts.entity_id = members.entity_id),
       (SELECT list(DISTINCT purchase.payment_fingerprint ORDER BY purchase.payment_fingerprint)
        FROM purchases AS purchase
        WHERE purchase.entity_id = members.entity_id AND purchase.payment_fingerprint IS NOT NULL),
       (SELECT list((sharing.fingerprint, sharing.entity_ids, sharing.links_entities) ORDER BY sharing.fingerprint)
        FROM fingerprint_sharing AS sharing WHERE list_contains(sharing.entity_ids, members.entity_id))
FROM members ORDER BY members.entity_id
"""

_REFUNDS_SQL = """
SELECT verdict.refund_id, verdict.order_id, verdict.account_id, verdict.entity_id, refund.requested_at,
       verdict.refund_status, verdict.refund_amount, verdict.currency, verdict.verdict, verdict.rule_codes,
       verdict.amount_at_risk
FROM refund_verdicts AS verdict
JOIN refunds AS refund USING (refund_id)
JOIN entity_groups AS groups USING (entity_id)
WHERE groups.group_id = ?
ORDER BY refund.requested_at, verdict.refund_id
"""

# --- formatting -------------------------------------------------------------------------------


def _evidence_lines(value) -> list[str]:
    """A signal's evidence as `key: value` lines; a list of records as one `- ...` line each."""
    if not isinstance(value, dict):
        return [_inline(value)]
    lines = []
    for key, item in value.items():
        if isinstance(item, list) and any(isinstance(element, dict) for element in item):
            lines.append(f"{key}:")
            lines += [f"  - {_inline(element)}" for element in item]
        else:
            lines.append(f"{key}: {_inline(item)}")
    return lines


def _inline(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_inline(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(f"({_inline(item)})" if isinstance(item, dict) else _inline(item) for item in value) or "-"
    return "-" if value is None else str(value)


def _parse_json(text: str | None):
    try:
        return json.loads(text, parse_float=Decimal) if text else {}
    except ValueError:
        return {"evidence": text}


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    """Left-aligned columns two spaces apart, control characters escaped; the first line is the header."""
    cells = [[visible(str(cell)) for cell in row] for row in (header, *rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*cells, strict=False)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in cells]


def _short(items: list[str], keep: int = 3) -> str:
    return ", ".join(items[:keep]) + (f" +{len(items) - keep}" if len(items) > keep else "")


def _when(moment: datetime | str | None, zone: ZoneInfo) -> str:
    """A time in billing time; one Python cannot hold or show there (year 1, 9999, infinity) as stored."""
    if moment is None:
        return "-"
    if not isinstance(moment, datetime):  # DuckDB gives text for a time past Python's year 9999
        return f"{moment} (out of range)"
    try:
        return moment.astimezone(zone).strftime(TIME_FORMAT)
    except (OverflowError, ValueError):
        return f"{moment.isoformat()} (out of range)"


def _print(con, lines: list[str]) -> None:
    """Print lines with every known payment fingerprint masked and control characters escaped."""
    safe = _sanitiser(con, lines)
    for line in lines:
        click.echo(safe(line))


def _sanitiser(con, texts: list[str]) -> Callable[[str], str]:
    """Any of `texts` with every known payment fingerprint in it masked and control characters escaped."""
    masker = masking.masker_for(con, texts, identifiers=False)
    return lambda text: visible(masker.text(text))


def _fail(message: str):
    click.echo(f"refund-recon: {message}", err=True)
    raise SystemExit(1)
