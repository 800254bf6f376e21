"""The nightly HTML report (issue #6): one self-contained page per night, read from the warehouse.

`write_report` runs after the warehouse is committed. It reads the run (and up to 29 nights
before it) through a read-only connection and writes, next to the warehouse,

    report-<as_of>.html          identifiers as given in the warehouse
    report-<as_of>.shared.html   account and entity ids masked (`[privacy] mask_shared_report`)

Each page holds everything it shows: inline CSS, charts as inline SVG drawn here, no script,
no font, no image from anywhere, and a Content-Security-Policy that forbids loading any. A
payment fingerprint is never printed in full, in either copy: every value printed is masked
by jobs/masking.py at each id the warehouse knows. Files are written whole or not
at all (temporary file, then `os.replace`), so a failure leaves the previous night's report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from . import masking
from .errors import cannot_write, first_line
from .publish import output_folder

TEMPLATES = Path(__file__).parent / "templates"
TREND_NIGHTS = 30          # nights in the trend charts
TOP_CASES = 10             # abuse cases shown in full
MAX_FLAG_ROWS = 60         # new / resolved flags listed (the rest are counted)
EXAMPLES_PER_CHECK = 3     # quarantined rows shown per (file, check)
MAX_EXAMPLES = 40
TIMELINE_EVENTS = 40       # latest events of a case's timeline
OPEN_DISPOSITIONS = ("open", "reopened", "needs_info")

# Tableau 10: distinguishable, prints well in grey too.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
VERDICT_COLORS = {"breach": "#e15759", "stop": "#f28e2b"}


class ReportError(Exception):
    """The report cannot be made from this warehouse (missing, locked, or no such run)."""


# --- entry points -----------------------------------------------------------------------------

def write_report(db_path: Path, run_id: str, settings) -> list[Path]:
    """Write the run's self-contained HTML report(s) into its output folder (next to the warehouse,
    or a replay's own folder: jobs/publish.py `output_folder`); return their paths."""
    db_path = Path(db_path)
    con = _connect(db_path)
    try:
        data = collect(con, run_id)
        pages = render(con, data, shared_copy=settings.mask_shared_report)
    finally:
        con.close()
    try:
        folder = output_folder(db_path, run_id, data["run"]["mode"])
    except OSError as error:
        raise ReportError(cannot_write(error.filename, error)) from None
    stem = f"report-{data['run']['as_of']}"
    targets = [(folder / f"{stem}.html", pages["full"])]
    if "shared" in pages:
        targets.append((folder / f"{stem}.shared.html", pages["shared"]))
    _write_atomically(targets)
    return [path for path, _ in targets]


def find_run(db_path: Path, as_of: date | None = None) -> str:
    """The run a report is made of: the latest run of `as_of`, or the latest run at all."""
    con = _connect(Path(db_path))
    try:
        if as_of is None:
            rows = _rows(con, "SELECT run_id FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1")
        else:
            rows = _rows(con, "SELECT run_id FROM runs WHERE as_of = ? ORDER BY finished_at DESC, run_id DESC LIMIT 1",
                         [as_of])
    finally:
        con.close()
    if not rows:
        raise ReportError(f"{db_path}: no run {'as of ' + str(as_of) if as_of else 'yet'} in this warehouse")
    return rows[0]["run_id"]


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    if not db_path.is_file():
        raise ReportError(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as error:
        raise ReportError(f"{db_path}: cannot open the warehouse, is a run writing it? ({first_line(error)})") from None
    if not {"runs", "refund_verdicts_history", "refund_flags_history"} <= _tables(con):
        con.close()
        raise ReportError(f"{db_path}: no run in this warehouse (run `refund-recon run` first)")
    return con


def _write_atomically(targets: list[tuple[Path, str]]) -> None:
    """Write every file to a temporary sibling first, then move each into place.

    Raises ReportError naming the file that could not be written."""
    temporaries: list[Path] = []
    try:
        for path, text in targets:
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temporaries.append(Path(name))
            os.chmod(name, 0o666 & ~_umask())
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
        for (path, _), temporary in zip(targets, temporaries):
            os.replace(temporary, path)
    except OSError as error:
        raise ReportError(cannot_write(path, error)) from None
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- reading the warehouse --------------------------------------------------------------------

def _rows(con, sql: str, params=None) -> list[dict]:
    cursor = con.cursor()
    try:
        cursor.execute(sql, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _tables(con) -> set[str]:
    return {row["table_name"] for row in _rows(con, "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()")}


def _columns(con, table: str) -> list[str]:
    return [row["column_name"] for row in _rows(
        con, "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table])]


def _map(value) -> dict:
    """A DuckDB MAP as a dict, whichever form the driver returns."""
    if not value:
        return {}
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        return dict(zip(value["key"], value["value"]))
    return dict(value)


def collect(con, run_id: str) -> dict:
    """Everything the page shows, as plain Python values."""
    runs = _rows(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
    if not runs:
        raise ReportError(f"no run {run_id} in the warehouse")
    run = runs[0]
    zone = ZoneInfo(run.get("billing_time_zone") or "UTC")
    as_of = run["as_of"]
    as_of_end = datetime.combine(as_of + timedelta(days=1), clock(0), tzinfo=zone)
    tables = _tables(con)
    nights = _nights(con, run)
    previous = nights[-2] if len(nights) > 1 else None
    verdict_stats = _verdict_stats(con, [night["run_id"] for night in nights])
    case_stats = _case_stats(con, [night["run_id"] for night in nights])
    for night in nights:
        night["flag_counts"] = _map(night["flag_counts"])
        night["verdicts"] = verdict_stats.get(night["run_id"], {})
        night["cases"] = case_stats.get(night["run_id"], {"total": 0, "open": 0})
    rules = _rules(con, tables)
    data = {
        "run": run,
        "zone": zone,
        "as_of_end": as_of_end,
        "nights": nights,
        "tonight": nights[-1],
        "previous": previous,
        "currencies": sorted({currency for night in nights for (_, currency) in night["verdicts"]}),
        "rules": rules,
    }
    data["headline"] = _headline(data)
    data["rule_table"] = _rule_table(con, data)
    data["changes"] = _flag_changes(con, run_id, previous)
    data["cases"] = _cases(con, data, tables)
    data["validation"] = _validation(con, run, nights)
    data["invariants"] = _invariants(con, run, tables)
    data["daily"] = _daily(con, run, tables)
    return data


def _nights(con, run: dict) -> list[dict]:
    """The latest run of each of the last TREND_NIGHTS nights up to this one; this run is tonight.

    An earlier night is shown as delivered: its latest run from files, a replay only if it has none
    (a replay reads no file, so it counts no row in or quarantined)."""
    rows = _rows(con, """
        SELECT * FROM runs WHERE as_of < ?
        QUALIFY row_number() OVER (PARTITION BY as_of ORDER BY mode = 'replay', finished_at DESC, run_id DESC) = 1
        ORDER BY as_of DESC LIMIT ?""", [run["as_of"], TREND_NIGHTS - 1])
    return [*reversed(rows), dict(run)]


def _verdict_stats(con, run_ids: list[str]) -> dict:
    """Per run: {(verdict, currency): {refunds, at_risk, amount}}."""
    stats: dict = defaultdict(dict)
    for row in _rows(con, """
            SELECT run_id, verdict, coalesce(currency, '?') AS currency, count(*) AS refunds,
                   sum(amount_at_risk) AS at_risk, sum(refund_amount) AS amount
            FROM refund_verdicts_history WHERE list_contains(?, run_id) GROUP BY ALL""", [run_ids]):
        stats[row["run_id"]][(row["verdict"], row["currency"])] = row
    return stats


def _case_stats(con, run_ids: list[str]) -> dict:
    if "abuse_cases_history" not in _tables(con):
        return {}
    return {row["run_id"]: row for row in _rows(con, """
        SELECT run_id, count(*) AS total, count(*) FILTER (WHERE disposition IN ('open', 'reopened', 'needs_info')) AS open
        FROM abuse_cases_history WHERE list_contains(?, run_id) GROUP BY run_id""", [run_ids])}


def _rules(con, tables: set[str]) -> list[dict]:
    rules = _rows(con, "SELECT * FROM rule_catalog ORDER BY position") if "rule_catalog" in tables else []
    for index, rule in enumerate(rules):
        rule["color"] = PALETTE[index % len(PALETTE)]
    return rules


# --- headline ---------------------------------------------------------------------------------

@dataclass
class Metric:
    key: str
    label: str
    values: list            # one per night, tonight last (None where unknown)
    kind: str = "count"     # count | money
    worse_when: str = "up"  # up | down | none
    note: str = ""
    currency: str = ""

    @property
    def value(self):
        return self.values[-1]

    @property
    def previous(self):
        return self.values[-2] if len(self.values) > 1 else None

    @property
    def delta(self):
        if self.previous is None or self.value is None:
            return None
        return self.value - self.previous

    @property
    def mood(self) -> str:
        if not self.delta or self.worse_when == "none":
            return "same"
        return "worse" if (self.delta > 0) == (self.worse_when == "up") else "better"


def _headline(data: dict) -> list[Metric]:
    nights = data["nights"]

    def verdict_sum(night, verdicts, field_name, currency=None):
        return sum((row[field_name] or 0) for (verdict, cur), row in night["verdicts"].items()
                   if verdict in verdicts and (currency is None or cur == currency))

    metrics = [
        Metric("refunds_checked", "Refunds checked", [night["refunds_checked"] for night in nights], worse_when="none",
               note="every refund visible on the night"),
        Metric("flags", "Flags", [night["flag_count"] for night in nights], note="refund × rule pairs that fired"),
        Metric("refunds_breach", "Refunds in breach", [verdict_sum(n, ("breach",), "refunds") for n in nights],
               note="paid or rejected, with a flag"),
        Metric("refunds_stop", "Refunds to stop", [verdict_sum(n, ("stop",), "refunds") for n in nights],
               note="pending with a flag: stop before payout"),
    ]
    for currency in data["currencies"]:
        breach = verdict_sum(data["tonight"], ("breach",), "at_risk", currency)
        stop = verdict_sum(data["tonight"], ("stop",), "at_risk", currency)
        metrics.append(Metric(
            f"at_risk_{currency}", f"Money at risk ({currency})",
            [Decimal(verdict_sum(n, ("breach", "stop"), "at_risk", currency)) for n in nights], kind="money",
            note=f"breach {_money(breach)} · stop {_money(stop)}", currency=currency))
    metrics += [
        Metric("cases_open", "Abuse cases to review", [night["cases"]["open"] for night in nights],
               note=f"{data['tonight']['cases']['total']} cases in all"),
        Metric("rows_quarantined", "Rows quarantined", [night["rows_quarantined"] for night in nights],
               note=f"of {data['tonight']['rows_in']:,} rows in"),
    ]
    return metrics


def _rule_table(con, data: dict) -> list[dict]:
    """Per rule: flags, refunds and money at risk per currency, tonight and the night before."""
    run_ids = [data["tonight"]["run_id"]] + ([data["previous"]["run_id"]] if data["previous"] else [])
    stats: dict = defaultdict(lambda: {"flags": 0, "refunds": 0, "at_risk": {}})
    for row in _rows(con, """
            SELECT flag.run_id, flag.rule_code, coalesce(verdict.currency, '?') AS currency, count(*) AS flags,
                   count(DISTINCT flag.refund_id) AS refunds, sum(flag.amount_at_risk) AS at_risk
            FROM refund_flags_history AS flag
            LEFT JOIN refund_verdicts_history AS verdict USING (run_id, refund_id)
            WHERE list_contains(?, flag.run_id) GROUP BY ALL""", [run_ids]):
        entry = stats[(row["run_id"], row["rule_code"])]
        entry["flags"] += row["flags"]
        entry["refunds"] += row["refunds"]
        entry["at_risk"][row["currency"]] = row["at_risk"]
    codes = [rule["rule_code"] for rule in data["rules"]]
    codes += sorted({code for (_, code) in stats if code not in codes})
    catalog = {rule["rule_code"]: rule for rule in data["rules"]}
    table = []
    for code in codes:
        tonight = stats.get((run_ids[0], code), {"flags": 0, "refunds": 0, "at_risk": {}})
        before = stats.get((run_ids[1], code)) if len(run_ids) > 1 else None
        rule = catalog.get(code, {"rule_code": code, "category": "", "severity": "", "summary": "", "color": "#888"})
        table.append({**rule, "flags": tonight["flags"], "refunds": tonight["refunds"], "at_risk": tonight["at_risk"],
                      "delta": tonight["flags"] - (before or {"flags": 0})["flags"] if data["previous"] else None,
                      "at_risk_before": (before or {}).get("at_risk", {})})
    return table


# --- new and resolved flags -------------------------------------------------------------------

def _flag_changes(con, run_id: str, previous: dict | None) -> dict:
    sql = """
        SELECT flag.*, verdict.currency, verdict.verdict, verdict.refund_amount
        FROM refund_flags_history AS flag
        LEFT JOIN refund_verdicts_history AS verdict USING (run_id, refund_id)
        WHERE flag.run_id = ? ORDER BY flag.amount_at_risk DESC, flag.refund_id, flag.rule_code"""
    tonight = _rows(con, sql, [run_id])
    before = _rows(con, sql, [previous["run_id"]]) if previous else []
    tonight_keys = {(flag["refund_id"], flag["rule_code"]) for flag in tonight}
    before_keys = {(flag["refund_id"], flag["rule_code"]) for flag in before}
    new = [flag for flag in tonight if (flag["refund_id"], flag["rule_code"]) not in before_keys]
    resolved = [flag for flag in before if (flag["refund_id"], flag["rule_code"]) not in tonight_keys]
    if resolved:
        now = {row["refund_id"]: row for row in _rows(
            con, "SELECT refund_id, verdict, refund_status, rule_codes FROM refund_verdicts_history "
                 "WHERE run_id = ? AND list_contains(?, refund_id)", [run_id, [flag["refund_id"] for flag in resolved]])}
        for flag in resolved:
            flag["now"] = _resolution(now.get(flag["refund_id"]), flag)
    for flag in new + resolved:
        flag["evidence_items"] = _evidence(flag["evidence"])
    return {
        "has_previous": previous is not None,
        "new_count": len(new), "resolved_count": len(resolved),
        "kept_count": len(tonight_keys & before_keys),
        "new": new[:MAX_FLAG_ROWS], "resolved": resolved[:MAX_FLAG_ROWS],
        "new_risk": _sum_by_currency(new), "resolved_risk": _sum_by_currency(resolved),
    }


def _resolution(verdict: dict | None, flag: dict) -> str:
    if verdict is None:
        return "refund not visible tonight (quarantined or gone from the export)"
    if verdict["refund_status"] == "rejected" and flag["refund_status"] != "rejected":
        return f"refund now rejected; verdict {verdict['verdict']}"
    if verdict["refund_status"] != flag["refund_status"]:
        return f"refund now {verdict['refund_status']}; verdict {verdict['verdict']}"
    others = ", ".join(verdict["rule_codes"] or []) or "no other rule"
    return f"rule no longer fires (status {verdict['refund_status']}; {others}); verdict {verdict['verdict']}"


def _sum_by_currency(flags: list[dict]) -> dict:
    sums: dict = defaultdict(Decimal)
    for flag in flags:
        sums[flag.get("currency") or "?"] += flag["amount_at_risk"] or 0
    return dict(sorted(sums.items()))


# --- abuse cases ------------------------------------------------------------------------------

def _cases(con, data: dict, tables: set[str]) -> dict:
    run_id = data["run"]["run_id"]
    if "abuse_cases_history" not in tables:
        return {"total": 0, "shown": [], "by_severity": {}}
    cases = _rows(con, """
        SELECT * FROM abuse_cases_history WHERE run_id = ?
        ORDER BY score DESC, amount_at_risk DESC NULLS LAST, refund_count DESC, case_id""", [run_id])
    by_severity: dict = defaultdict(int)
    for case in cases:
        by_severity[case["severity"]] += 1
    shown = cases[:TOP_CASES]
    signal_summary = {row["signal_code"]: row["summary"] for row in _rows(con, "SELECT * FROM signal_catalog")} \
        if "signal_catalog" in tables else {}
    for case in shown:
        case["signals"] = _case_signals(con, run_id, case, signal_summary)
        case["refunds"] = _case_refunds(con, run_id, case)
        case["accounts"] = _case_accounts(con, case, data["as_of_end"], tables)
        case["events"], case["earlier_events"] = _case_timeline(con, run_id, case, data, tables)
        case["timeline_svg"] = timeline_chart(case["events"], data["zone"], data["run"]["as_of"])
        case["decisions"] = _rows(con, """
            SELECT disposition, reviewer, note, decided_at FROM case_dispositions
            WHERE case_id = ? AND decided_at <= ? ORDER BY decided_at DESC LIMIT 5""",
                                  [case["case_id"], data["run"]["finished_at"]]) \
            if "case_dispositions" in tables else []
        case["amounts"] = case.get("amounts_by_currency") or []
    return {"total": len(cases), "shown": shown, "by_severity": dict(by_severity),
            "open": sum(1 for case in cases if case["disposition"] in OPEN_DISPOSITIONS)}


def _case_signals(con, run_id: str, case: dict, summaries: dict) -> list[dict]:
    """The case's signals, one entry per code: a signal firing for several entities of the group
    (LINKED_ENTITIES fires for all of them) is shown once, its evidence merged."""
    rows = _rows(con, """
        SELECT signal_code, entity_id, evidence, refund_ids FROM abuse_signals_history
        WHERE run_id = ? AND list_contains(?, entity_id) ORDER BY signal_code, entity_id""",
                 [run_id, list(case["entity_ids"])])
    merged: dict = {}
    for row in rows:
        entry = merged.setdefault(row["signal_code"], {
            "signal_code": row["signal_code"], "summary": summaries.get(row["signal_code"], ""),
            "entity_ids": [], "refund_ids": [], "evidences": []})
        entry["entity_ids"].append(row["entity_id"])
        entry["refund_ids"] += [refund for refund in row["refund_ids"] or [] if refund not in entry["refund_ids"]]
        entry["evidences"].append(_parse(row["evidence"]))
    for entry in merged.values():
        entry["evidence_items"] = _evidence_items(_merge_evidence(entry["entity_ids"], entry.pop("evidences")))
    return list(merged.values())


def _merge_evidence(entity_ids: list[str], evidences: list) -> object:
    """One evidence for a signal of several entities: equal figures once, lists of records
    joined without repeats, and figures that differ given per entity."""
    if all(evidence == evidences[0] for evidence in evidences) or not all(isinstance(e, dict) for e in evidences):
        return evidences[0]
    merged = {}
    for key in dict.fromkeys(key for evidence in evidences for key in evidence):
        values = [evidence.get(key) for evidence in evidences]
        if all(value == values[0] for value in values):
            merged[key] = values[0]
        elif all(isinstance(value, list) for value in values):
            seen, union = set(), []
            for value in values:
                for element in value:
                    marker = json.dumps(element, sort_keys=True, default=str)
                    if marker not in seen:
                        seen.add(marker)
                        union.append(element)
            merged[key] = union
        else:
            merged[key] = dict(zip(entity_ids, values))
    return merged


def _case_refunds(con, run_id: str, case: dict) -> list[dict]:
    return _rows(con, """
        SELECT verdict.*, refund.requested_at FROM refund_verdicts_history AS verdict
        LEFT JOIN refunds AS refund USING (refund_id)
        WHERE verdict.run_id = ? AND list_contains(?, verdict.refund_id)
        ORDER BY refund.requested_at NULLS LAST, verdict.refund_id""", [run_id, list(case["refund_ids"] or [])])


def _case_accounts(con, case: dict, as_of_end: datetime, tables: set[str]) -> list[dict]:
    """The group's accounts and their status at the end of as_of."""
    if not {"purchases", "account_status"} <= tables:
        return []
    return _rows(con, """
        WITH accounts AS (
            SELECT entity_id, account_id, count(*) AS orders FROM purchases
            WHERE list_contains(?, entity_id) AND purchased_at < ? GROUP BY ALL),
        status_then AS (
            SELECT account_id, status, reason, effective_at FROM account_status WHERE effective_at < ?
            QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY effective_at DESC) = 1)
        SELECT accounts.*, coalesce(status_then.status, 'active') AS status, status_then.reason, status_then.effective_at
        FROM accounts LEFT JOIN status_then USING (account_id) ORDER BY entity_id, account_id""",
                 [list(case["entity_ids"]), as_of_end, as_of_end])


def _case_timeline(con, run_id: str, case: dict, data: dict, tables: set[str]) -> tuple[list[dict], int]:
    """Purchases, refund requests, payouts and rejections as the night saw them, and status changes."""
    if not {"purchases", "refunds", "account_status"} <= tables:
        return [], 0
    events = _rows(con, """
        WITH orders AS (
            SELECT * FROM purchases WHERE list_contains(?, entity_id) AND purchased_at < ?),
        refunds_seen AS (
            SELECT refund.*, verdict.refund_status, verdict.verdict, verdict.rule_codes,
                   orders.account_id, orders.entity_id, orders.product
            FROM refunds AS refund JOIN orders USING (order_id)
            JOIN refund_verdicts_history AS verdict ON verdict.run_id = ? AND verdict.refund_id = refund.refund_id)
        SELECT purchased_at AS happened_at, 1 AS event_order, 'purchase' AS kind, order_id AS ref,
               format('order {} · {} {}{} · paid {} {}{}', order_id, product, package_kind, coalesce(' ' || edition, ''),
                      CAST(paid_cash_credit + paid_commission_credit + paid_free_credit AS VARCHAR), currency,
                      CASE WHEN discount_amount + coupon_amount > 0
                           THEN format(' (discount {}, coupon {})', CAST(discount_amount AS VARCHAR),
                                       CAST(coupon_amount AS VARCHAR)) ELSE '' END) AS detail,
               account_id, entity_id
        FROM orders
        UNION ALL
        SELECT requested_at, 2, 'refund requested', refund_id,
               format('{} of order {} ({}) · {} {} · verdict {}{}', refund_id, order_id, product,
                      CAST(refund_amount AS VARCHAR), currency,
                      verdict, CASE WHEN len(rule_codes) > 0 THEN ' (' || array_to_string(rule_codes, ', ') || ')' ELSE '' END),
               account_id, entity_id
        FROM refunds_seen
        UNION ALL
        SELECT processed_at, 3, 'refund ' || refund_status, refund_id,
               format('{} · {} {}', refund_id, CAST(refund_amount AS VARCHAR), currency), account_id, entity_id
        FROM refunds_seen WHERE refund_status IN ('paid', 'rejected') AND processed_at IS NOT NULL AND processed_at < ?
        UNION ALL
        SELECT change.effective_at, 4, 'account ' || change.status, change.account_id,
               coalesce(change.reason, ''), change.account_id, NULL
        FROM account_status AS change
        WHERE change.account_id IN (SELECT account_id FROM orders) AND change.effective_at < ?
        ORDER BY happened_at, event_order, ref""",
                   [list(case["entity_ids"]), data["as_of_end"], run_id, data["as_of_end"], data["as_of_end"]])
    earlier = max(0, len(events) - TIMELINE_EVENTS)
    return events[earlier:], earlier


# --- validation -------------------------------------------------------------------------------

def _validation(con, run: dict, nights: list[dict]) -> dict:
    files = []
    for item in run.get("input_files") or []:
        item = dict(item)
        rows_in = item.get("rows_in") or 0
        item["share"] = (item.get("rows_quarantined") or 0) / rows_in if rows_in else 0.0
        files.append(item)
    files.sort(key=lambda item: (-item["share"], -(item.get("rows_quarantined") or 0), item.get("source") or ""))
    checks = _rows(con, """
        SELECT source, "check", "column", count(*) AS failures, count(DISTINCT line) AS rows
        FROM validation_errors_history WHERE run_id = ? GROUP BY ALL
        ORDER BY failures DESC, source, "check" """, [run["run_id"]])
    examples = _rows(con, """
        SELECT source, line, "column", "check", value, message FROM validation_errors_history WHERE run_id = ?
        QUALIFY row_number() OVER (PARTITION BY source, "check" ORDER BY line, "column") <= ?
        ORDER BY source, line, "column" LIMIT ?""", [run["run_id"], EXAMPLES_PER_CHECK, MAX_EXAMPLES])
    total = _rows(con, "SELECT count(*) AS n FROM validation_errors_history WHERE run_id = ?", [run["run_id"]])[0]["n"]
    return {"files": files, "checks": checks, "examples": examples, "failures": total,
            "rows_in": run["rows_in"], "rows_loaded": run["rows_loaded"], "rows_quarantined": run["rows_quarantined"],
            "trend": line_chart(
                "Rows quarantined per night", [night["as_of"] for night in nights],
                [("rows quarantined", "#e15759", [night["rows_quarantined"] or 0 for night in nights])],
                y_label="rows", key="quarantine-trend")}


# --- tables the finance tie-out adds (shown only when present) --------------------------------

def _source(tables: set[str], name: str) -> str | None:
    """The run-keyed history of `name` when there is one, else the latest table, else None."""
    return f"{name}_history" if f"{name}_history" in tables else name if name in tables else None


def _run_filter(columns: list[str], run: dict) -> tuple[str, list]:
    if "run_id" in columns:
        return "run_id = ?", [run["run_id"]]
    if "as_of" in columns:
        return "as_of = ?", [run["as_of"]]
    return "true", []


# Invariant columns shown, in this order, when the table has them; otherwise every column.
_INVARIANT_COLUMNS = ("invariant", "name", "passed", "expected", "actual", "detail")


def _invariants(con, run: dict, tables: set[str]) -> dict | None:
    source = _source(tables, "invariant_results")
    if source is None:
        return None
    columns = _columns(con, source)
    where, params = _run_filter(columns, run)
    order = "position" if "position" in columns else "1"
    rows = _rows(con, f"SELECT * FROM {source} WHERE {where} ORDER BY {order} LIMIT 500", params)
    shown = [column for column in _INVARIANT_COLUMNS if column in columns]
    if len(shown) < 2:
        shown = [column for column in columns if column not in ("run_id", "as_of")]
    status = next((column for column in ("passed", "status", "result", "ok", "outcome") if column in columns), None)
    for row in rows:
        row["_failed"] = status is not None and _is_failure(row.get(status))
    return {"columns": shown, "rows": rows, "status_column": status,
            "failed": sum(row["_failed"] for row in rows), "total": len(rows),
            "has_description": "description" in columns and "description" not in shown}


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "UINTEGER", "DOUBLE", "FLOAT", "DECIMAL")


def _daily(con, run: dict, tables: set[str]) -> dict | None:
    """The finance tie-out, transposed: one line per measure, a column per currency for the
    billing day as_of and for every billing day of the table (to as_of)."""
    source = _source(tables, "daily_reconciliation")
    if source is None:
        return None
    types = {row["column_name"]: row["data_type"] for row in _rows(
        con, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [source])}
    columns = list(types)
    where, params = _run_filter(columns, run)
    measures = [column for column, kind in types.items()
                if kind.split("(")[0] in _NUMERIC and column not in ("position",)]
    if not measures:
        return None
    day = next((column for column in ("billing_day", "day", "date") if column in columns), None)
    group = '"currency"' if "currency" in columns else "''"
    sums = ", ".join(f'sum("{column}") AS "{column}"' for column in measures)
    scopes = []
    if day:
        scopes.append((f"billing day {run['as_of']}", f'{where} AND "{day}" = ?', [*params, run["as_of"]]))
    scopes.append(("all billing days" if day else "all rows", where, params))
    groups, values = [], {}
    for label, condition, arguments in scopes:
        for row in _rows(con, f"SELECT {group} AS _group, {sums} FROM {source} WHERE {condition} GROUP BY ALL ORDER BY 1",
                         arguments):
            key = (label, row["_group"])
            groups.append(key)
            values[key] = row
    lines = [{"measure": column.replace("_", " "), "column": column,
              "values": [values[key][column] for key in groups],
              "money": types[column].startswith("DECIMAL") or types[column] in ("DOUBLE", "FLOAT")}
             for column in measures]
    return {"groups": groups, "lines": lines, "scopes": [label for label, _, _ in scopes]}


def _is_failure(value) -> bool:
    if isinstance(value, bool):
        return not value
    return str(value).lower() in ("fail", "failed", "false", "error")


# --- evidence ---------------------------------------------------------------------------------

def _parse(text: str | None):
    if not text:
        return {}
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        return {"evidence": text}


def _evidence(text: str | None) -> list[dict]:
    return _evidence_items(_parse(text))


def _evidence_items(value) -> list[dict]:
    """Evidence as items to show: a value, or a small table for a list of records."""
    if not isinstance(value, dict):
        return [{"key": "evidence", "text": _inline(value)}]
    items = []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(element, dict) for element in item):
            columns = list(dict.fromkeys(column for element in item for column in element))
            items.append({"key": key, "columns": columns,
                          "rows": [[_inline(element.get(column)) for column in columns]
                                   for element in item]})
        else:
            items.append({"key": key, "text": _inline(item)})
    return items


def _inline(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_inline(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(f"({_inline(item)})" if isinstance(item, dict) else _inline(item) for item in value) or "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal) and value.as_tuple().exponent < -2:
        return format(value.normalize(), "f")   # minutes 120.000000 -> 120; money keeps its 2 decimals
    return str(value)


# --- masking what is printed ------------------------------------------------------------------

class _Printed:
    """Jinja's finalize hook: sees every value printed. The first rendering collects their texts;
    the next ones print them masked by `masker` (jobs/masking.py), HTML of charts included."""

    def __init__(self):
        self.texts: set[str] = set()
        self.masker: masking.Masker | None = None
        self.html_masker: masking.Masker | None = None

    def mask_with(self, masker: masking.Masker) -> None:
        self.masker, self.html_masker = masker, masker.escaped(escape)

    def __call__(self, value):
        if value is None:
            return ""
        if self.masker is None:
            self.texts.add(value.unescape() if isinstance(value, Markup) else str(value))
            return value
        if isinstance(value, Markup):
            return Markup(self.html_masker.text(str(value)))
        return self.masker.text(str(value))


# --- rendering --------------------------------------------------------------------------------

def render(con, data: dict, shared_copy: bool = True) -> dict[str, str]:
    """{'full': html, 'shared': html (when shared_copy)}."""
    printed = _Printed()
    environment = _environment(printed, data["zone"])
    template = environment.get_template("report.html.j2")
    context = {**data, "charts": _charts(data), "generated_at": datetime.now(data["zone"])}
    template.render(**context, shared=False)      # collects what is printed
    masking.create_known_ids(con)
    printed.mask_with(masking.masker_for(con, printed.texts, identifiers=False))
    pages = {"full": template.render(**context, shared=False)}
    if shared_copy:
        printed.mask_with(masking.masker_for(con, printed.texts, identifiers=True))
        pages["shared"] = template.render(**context, shared=True)
    return pages


def _environment(printed: _Printed, zone: ZoneInfo) -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, finalize=printed,
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(
        num=_number, money=_money, pct=_percent, when=lambda moment: _when(moment, zone),
        delta=_delta, amounts=_amounts, day=lambda value: value.strftime("%Y-%m-%d") if value else "–",
    )
    return environment


def _number(value) -> str:
    return "–" if value is None else f"{value:,}"


def _money(value) -> str:
    return "–" if value is None else f"{Decimal(value):,.2f}"


def _percent(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if value >= 0.001 or value == 0 else f"{value:.2%}"


def _when(moment, zone: ZoneInfo) -> str:
    if moment is None:
        return "–"
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return moment.strftime("%Y-%m-%d %H:%M")
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return str(moment)


def _delta(value, kind: str = "count") -> str:
    if value is None:
        return "no previous night"
    if not value:
        return "= no change"
    text = _money(abs(value)) if kind == "money" else f"{abs(value):,}"
    return ("▲ +" if value > 0 else "▼ −") + text


def _amounts(by_currency: dict, inline: bool = False) -> Markup:
    """Money per currency: one line each, or one line for all when `inline`."""
    items = [f"{_money(amount)} {currency}" for currency, amount in sorted((by_currency or {}).items()) if amount]
    return Markup(" · " if inline else "<br>").join(items) if items else Markup("0.00")


# --- charts: inline SVG -----------------------------------------------------------------------

def _charts(data: dict) -> dict:
    nights = data["nights"]
    labels = [night["as_of"] for night in nights]
    codes = [rule["rule_code"] for rule in data["rules"]]
    codes += sorted({code for night in nights for code in night["flag_counts"] if code not in codes})
    colors = {rule["rule_code"]: rule["color"] for rule in data["rules"]}
    flags = bar_chart(
        f"Flags per rule, last {len(nights)} night{'s' if len(nights) != 1 else ''}", labels,
        [(code, colors.get(code, "#888"), [night["flag_counts"].get(code, 0) for night in nights])
         for code in codes if any(night["flag_counts"].get(code) for night in nights)],
        y_label="flags", key="flags-trend")
    money = []
    for currency in data["currencies"]:
        series = [(verdict, VERDICT_COLORS[verdict],
                   [float(night["verdicts"].get((verdict, currency), {}).get("at_risk") or 0) for night in nights])
                  for verdict in ("breach", "stop")]
        money.append(bar_chart(f"Money at risk ({currency}) by verdict", labels, series,
                               y_label=currency, key=f"money-trend-{currency}", money=True))
    sparks = {metric.key: sparkline([float(value or 0) for value in metric.values]) for metric in data["headline"]}
    return {"flags": flags, "money": money, "sparks": sparks}


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for the y axis and its tick step (4-5 ticks)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw:
            break
    if value >= 4 and step < 1:
        step = 1.0
    return step * math.ceil(value / step - 1e-9), step


def _tick(value: float, money: bool) -> str:
    if money and abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _x_labels(labels: list, plot_left: float, slot: float) -> list[tuple[float, str]]:
    every = max(1, math.ceil(len(labels) / 8))
    out = []
    for index, label in enumerate(labels):
        if (len(labels) - 1 - index) % every == 0:   # tonight is always labelled
            text = label.strftime("%m-%d") if isinstance(label, date) else str(label)
            out.append((plot_left + slot * (index + 0.5), text))
    return out


def _legend(entries: list[tuple[str, str]], left: float, width: int) -> tuple[list[str], float]:
    """Legend swatches in rows across the chart's top; returns the parts and the rows' bottom."""
    parts, x, y = [], left, 24
    for name, color in entries:
        item_width = 24 + 7.0 * len(name)
        if x > left and x + item_width > width - 10:
            x, y = left, y + 15
        parts.append(f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{color}"/>'
                     f'<text class="legend" x="{x + 14:.0f}" y="{y + 9}">{escape(name)}</text>')
        x += item_width
    return parts, (y + 15 if entries else 24)


def _frame(title: str, key: str, width: int, height: int, legend: list[str], body: list[str],
           y_label: str, top: float, bottom: float, left: float, nights: int) -> Markup:
    parts = [f'<svg class="chart" data-chart="{escape(key)}" data-nights="{nights}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<text class="chart-title" x="{left}" y="14">{escape(title)}</text>',
             f'<text class="axis-label" transform="translate(12 {(top + bottom) / 2:.0f}) rotate(-90)" '
             f'text-anchor="middle">{escape(y_label)}</text>',
             f'<text class="axis-label" x="{(left + width - 10) / 2:.0f}" y="{height - 3}" text-anchor="middle">'
             f"night (billing day)</text>",
             *legend, *body, "</svg>"]
    return Markup("".join(parts))


def _axes(labels, y_max, step, money, left, right, top, bottom) -> list[str]:
    body = []
    ticks = int(round(y_max / step))
    for index in range(ticks + 1):
        value = step * index
        y = bottom - (bottom - top) * value / y_max
        body.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="tick" x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_tick(value, money)}</text>')
    slot = (right - left) / max(1, len(labels))
    for x, text in _x_labels(labels, left, slot):
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 13}" text-anchor="middle">{text}</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    return body


def bar_chart(title: str, labels: list, series: list[tuple[str, str, list[float]]], y_label: str, key: str,
              money: bool = False, width: int = 640, plot_height: int = 170) -> Markup:
    """Stacked bars, one per night; each series one colour, listed in the legend."""
    legend, legend_bottom = _legend([(name, color) for name, color, _ in series], 52, width)
    left, right, top = 52, width - 10, legend_bottom + 8
    bottom, height = top + plot_height, top + plot_height + 32
    totals = [sum(values[index] for _, _, values in series) for index in range(len(labels))]
    y_max, step = _nice_ceiling(max(totals, default=0))
    body = _axes(labels, y_max, step, money, left, right, top, bottom)
    slot = (right - left) / max(1, len(labels))
    bar = max(2.0, min(28.0, slot * 0.7))
    for index, label in enumerate(labels):
        base = bottom
        x = left + slot * index + (slot - bar) / 2
        for name, color, values in series:
            value = values[index]
            if not value:
                continue
            h = (bottom - top) * value / y_max
            base -= h
            shown = _money(value) if money else f"{value:,}"
            body.append(f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{color}"><title>{label} {escape(name)}: {shown}</title></rect>')
    if not any(totals):
        body.append(f'<text class="empty" x="{(left + right) / 2:.0f}" y="{(top + bottom) / 2:.0f}" '
                    f'text-anchor="middle">nothing on these nights</text>')
    return _frame(title, key, width, height, legend, body, y_label, top, bottom, left, len(labels))


def line_chart(title: str, labels: list, series: list[tuple[str, str, list[float]]], y_label: str, key: str,
               money: bool = False, width: int = 640, plot_height: int = 130) -> Markup:
    """One line per series, a dot per night."""
    legend, legend_bottom = _legend([(name, color) for name, color, _ in series], 52, width)
    left, right, top = 52, width - 10, legend_bottom + 8
    bottom, height = top + plot_height, top + plot_height + 32
    y_max, step = _nice_ceiling(max((value for _, _, values in series for value in values), default=0))
    body = _axes(labels, y_max, step, money, left, right, top, bottom)
    slot = (right - left) / max(1, len(labels))
    for name, color, values in series:
        points = [(left + slot * (index + 0.5), bottom - (bottom - top) * value / y_max)
                  for index, value in enumerate(values)]
        if len(points) > 1:
            body.append(f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        for (x, y), label, value in zip(points, labels, values):
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{label} {escape(name)}: '
                        f"{value:,}</title></circle>")
    return _frame(title, key, width, height, legend, body, y_label, top, bottom, left, len(labels))


def sparkline(values: list[float], width: int = 110, height: int = 26) -> Markup:
    """A tiny line of the last nights, tonight's point marked."""
    if not values:
        return Markup("")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 6) / max(1, len(values) - 1)
    points = [(3 + step * index, height - 4 - (height - 8) * (value - low) / span) for index, value in enumerate(values)]
    if len(points) == 1:
        points = [(3, points[0][1]), (width - 3, points[0][1])]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    x, y = points[-1]
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'aria-hidden="true"><polyline fill="none" stroke="#4e79a7" stroke-width="1.5" points="{line}"/>'
                  f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#4e79a7"/></svg>')


_EVENT_STYLE = {
    "purchase": ("#4e79a7", "circle"),
    "refund requested": ("#f28e2b", "triangle"),
    "refund paid": ("#59a14f", "square"),
    "refund rejected": ("#9c755f", "square"),
}


def timeline_chart(events: list[dict], zone: ZoneInfo, as_of: date, width: int = 760, height: int = 74) -> Markup:
    """A case's events on a day axis: purchases, refund requests, payouts, status changes."""
    if not events:
        return Markup("")
    days = [event["happened_at"].astimezone(zone).date() for event in events]
    first, last = min(days), max(max(days), as_of)
    span = max(1, (last - first).days)
    left, right, axis_y = 16, width - 16, 40
    parts = [f'<svg class="chart timeline" data-chart="timeline" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="timeline">',
             f'<line class="axis" x1="{left}" x2="{right}" y1="{axis_y}" y2="{axis_y}"/>']
    for day, anchor in ((first, "start"), (last, "end")):
        x = left + (right - left) * (day - first).days / span
        parts.append(f'<text class="tick" x="{x:.0f}" y="{axis_y + 26}" text-anchor="{anchor}">{day:%Y-%m-%d}</text>')
    stacks: dict = defaultdict(int)
    for event, day in zip(events, days):
        x = left + (right - left) * (day - first).days / span
        level = stacks[(day, event["kind"] == "purchase")]
        stacks[(day, event["kind"] == "purchase")] += 1
        color, shape = _EVENT_STYLE.get(event["kind"], ("#e15759" if "suspended" in event["kind"] else "#bab0ac", "diamond"))
        y = axis_y - 9 - 9 * level if event["kind"] != "purchase" else axis_y + 9 + 0 * level
        label = f'<title>{escape(_when(event["happened_at"], zone))} {escape(event["kind"])}: {escape(event["detail"] or "")}</title>'
        if shape == "circle":
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}">{label}</circle>')
        elif shape == "triangle":
            parts.append(f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}" '
                         f'fill="{color}">{label}</polygon>')
        elif shape == "square":
            parts.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}">{label}</rect>')
        else:
            parts.append(f'<polygon points="{x:.1f},{y - 6:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 5:.1f},{y:.1f}" '
                         f'fill="{color}">{label}</polygon>')
    x = left + (right - left) * (as_of - first).days / span
    parts.append(f'<line class="as-of" x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{axis_y + 14}"/>'
                 f'<text class="tick" x="{x - 3:.1f}" y="10" text-anchor="end">as_of</text></svg>')
    return Markup("".join(parts))
