"""The nightly HTML report (issue #6): one self-contained page per night, read from the warehouse
(or from a run's Parquet outputs: `write_report_from`, jobs/outputs/parquet_night.py).

`write_report` runs after the warehouse is committed. It opens the warehouse read-only, makes
the report's views there (sql/report/*.sql: declared steps run as TEMP VIEWs on this
connection, docs/report.md), reads them, and writes, into the run's output folder,

    report-<as_of>.html          identifiers as given in the warehouse
    report-<as_of>.shared.html   account and entity ids masked (`[privacy] mask_shared_report`)

This module only shapes what the views return for the template (jobs/outputs/templates/); the charts
are jobs/outputs/charts.py, the printed formats jobs/outputs/formats.py. Each page holds everything it shows:
inline CSS, inline SVG, no script, no font, no image from anywhere, and a
Content-Security-Policy that forbids loading any. A payment fingerprint is never printed in
full, in either copy: every value printed is masked by jobs/outputs/masking.py at each id the
warehouse knows. Files are written whole or not at all (jobs/outputs/files.py), so a failure leaves
the previous night's report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from jobs.config import Settings
from jobs.engine.engine import DuckDBEngine, Typed
from jobs.engine.runner import Runner
from jobs.engine.sqlfiles import quoted
from jobs.engine.steps import StepError, discover, step
from jobs.errors import cannot_write, first_line
from jobs.outputs import charts, files, formats, masking, parquet_night
from jobs.outputs.outcome import night_status, night_warnings
from jobs.stages.publish import output_folder

TEMPLATES = Path(__file__).parent / "templates"
TREND_NIGHTS = 30  # nights in the trend charts
TOP_CASES = 10  # abuse cases shown in full
MAX_FLAG_ROWS = 20  # new / resolved flags listed (the rest are counted; all in the exports)
EXAMPLES_PER_CHECK = 3  # quarantined rows shown per (file, check)
MAX_EXAMPLES = 40
TIMELINE_EVENTS = 40  # latest events of a case's timeline
# The invariant_results columns shown, in this order (the description goes under the name).
INVARIANT_COLUMNS = ("invariant", "name", "passed", "expected", "actual", "detail")
# The money of the first screen, per currency: (column of report_night_money, label).
MONEY_FIGURES = (
    ("amount_at_risk", "At risk"),
    ("amount_recoverable", "Recoverable"),
    ("amount_owed_to_customers", "Owed to customers"),
)


class ReportError(Exception):
    """The report cannot be made from this warehouse (missing, locked, or no such run)."""


# --- entry points -----------------------------------------------------------------------------


def write_report(db_path: Path, run_id: str, settings) -> list[Path]:
    """Write the run's self-contained HTML report(s) into its output folder (next to the warehouse,
    or a replay's own folder: jobs/stages/publish.py `output_folder`); return their paths."""
    db_path = Path(db_path)
    con = _connect(db_path, settings)
    try:
        data = read_night(con, db_path, run_id)
        pages = render(con, data, shared_copy=settings.mask_shared_report)
    finally:
        con.close()
    with _writing():
        return _write_pages(output_folder(db_path, run_id, data["run"]["mode"]), data, pages)


def write_report_from(folder: Path, as_of: date | None, settings) -> list[Path]:
    """Write night `as_of`'s report(s) (default: the latest night) from a run's Parquet outputs
    (`<folder>/<table>/as_of=<D>/`: jobs/outputs/parquet_night.py) into `folder`; return their paths."""
    folder = Path(folder)
    try:
        con, night = parquet_night.open_night(folder, as_of, TREND_NIGHTS, settings)
        try:
            data = read_night(con, folder, _chosen_run(con, folder, night))
            pages = render(con, data, shared_copy=settings.mask_shared_report)
        finally:
            con.close()
    except parquet_night.OutputsError as error:
        raise ReportError(str(error)) from None
    except duckdb.Error as error:
        raise ReportError(f"{folder}: cannot read the Parquet outputs ({first_line(error)})") from None
    with _writing():
        return _write_pages(folder, data, pages)


def _write_pages(folder: Path, data: dict, pages: dict[str, str]) -> list[Path]:
    """`report-<as_of>.html` (and `.shared.html`) in `folder`, written whole or not at all."""
    stem = f"report-{data['run']['as_of']}"
    targets = [(folder / f"{stem}.html", pages["full"])]
    if "shared" in pages:
        targets.append((folder / f"{stem}.shared.html", pages["shared"]))
    files.write_atomically(targets)
    return [path for path, _ in targets]


@contextmanager
def _writing() -> Iterator[None]:
    """A file that cannot be written fails the report in one line."""
    try:
        yield
    except OSError as error:
        raise ReportError(cannot_write(error.filename, error)) from None


def read_night(con: duckdb.DuckDBPyConnection, db_path: Path, run_id: str) -> dict:
    """Everything the page shows for `run_id`, read through the report's views on `con`."""
    views = _views(
        con,
        db_path,
        _report_steps(),
        run_id=run_id,
        trend_nights=TREND_NIGHTS,
        top_cases=TOP_CASES,
        examples_per_check=EXAMPLES_PER_CHECK,
        max_examples=MAX_EXAMPLES,
    )
    return collect(views)


def find_run(db_path: Path, as_of: date | None = None, settings: Settings | None = None) -> str:
    """The run a report is made of: the latest run of `as_of`, or the latest run at all."""
    con = _connect(Path(db_path), settings or Settings())
    try:
        return _chosen_run(con, db_path, as_of)
    finally:
        con.close()


def _chosen_run(con: duckdb.DuckDBPyConnection, source: Path, as_of: date | None) -> str:
    rows = _views(con, source, [step("report/run_choice")], as_of=Typed(as_of, "DATE")).rows("report_run_choice")
    if not rows:
        raise ReportError(f"{source}: no run {'as of ' + str(as_of) if as_of else 'yet'} in this warehouse")
    return rows[0]["run_id"]


def _connect(db_path: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only, under the run's DuckDB settings (its memory limit)."""
    if not db_path.is_file():
        raise ReportError(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    try:
        return duckdb.connect(str(db_path), read_only=True, config=settings.duckdb_config(db_path))
    except duckdb.Error as error:
        raise ReportError(f"{db_path}: cannot open the warehouse, is a run writing it? ({first_line(error)})") from None


# --- the report's views -----------------------------------------------------------------------


class _Views:
    """The report's views, made on one connection; read whole, as dicts."""

    def __init__(self, engine: DuckDBEngine):
        self.engine = engine

    def rows(self, view: str) -> list[dict]:
        names, rows = self.engine.fetch(f"SELECT * FROM {quoted(view)}", {})
        return [dict(zip(names, row, strict=True)) for row in rows]

    def by_case(self, view: str) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = defaultdict(list)
        for row in self.rows(view):
            grouped[row.pop("case_id")].append(row)
        return grouped


def _report_steps():
    return [found for found in discover("report") if found.name != "report/run_choice"]


def _views(con, db_path: Path, steps, **params) -> _Views:
    """Make `steps`' views on `con` with `params`; a warehouse lacking a table they read is
    refused with the table named."""
    engine = DuckDBEngine(con)
    relations = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()"
        ).fetchall()
    }
    if "runs" not in relations:
        raise ReportError(f"{db_path}: no run in this warehouse (run `refund-recon run` first)")
    try:
        Runner(engine, params, provided=relations).run(steps)
    except StepError as error:
        raise ReportError(
            f"{db_path}: the warehouse lacks what the report reads, a run of this version adds it ({error})"
        ) from None
    return _Views(engine)


# --- what the page shows ----------------------------------------------------------------------


def collect(views: _Views) -> dict:
    """Everything the page shows, as plain Python values."""
    runs = views.rows("report_run")
    if not runs:
        raise ReportError("no such run in the warehouse")
    run = runs[0]
    nights = _nights(views)
    rules = views.rows("report_rules")
    for index, rule in enumerate(rules):
        rule["color"] = charts.PALETTE[index % len(charts.PALETTE)]
    data: dict[str, Any] = {
        "run": run,
        "zone": ZoneInfo(run["billing_time_zone"] or "UTC"),
        "nights": nights,
        "tonight": nights[-1],
        "previous": nights[-2] if len(nights) > 1 else None,
        "currencies": sorted({currency for night in nights for (_, currency) in night["verdicts"]}),
        "rules": rules,
    }
    data["headline"] = _headline(data)
    data["rule_table"] = _rule_table(views, data)
    data["changes"] = _flag_changes(views, data["previous"])
    data["cases"] = _cases(views, data)
    data["validation"] = _validation(views, run, nights)
    data["invariants"] = _invariants(views)
    data["daily"] = _daily(views)
    data["trust"] = _trust(views, run, data["invariants"])
    data["today"] = _today(views, data)
    data["money"] = _money(views, data)
    return data


# --- the first screen: trustworthy? what to do today? the money -------------------------------


def _trust(views: _Views, run: dict, invariants: dict) -> dict:
    """Is tonight trustworthy: its status and warnings (jobs/outputs/outcome.py), invariants, gates, quarantine."""
    gates = views.rows("report_gates")
    warnings = night_warnings(gates, run["input_files"] or [])
    return {
        "status": night_status(warnings),
        "warnings": warnings,
        "gates": len(gates),
        "gates_failed": sum(gate["passed"] is False for gate in gates),
        "gates_unjudged": sum(gate["passed"] is None for gate in gates),
        "invariants": invariants,
    }


def _today(views: _Views, data: dict) -> dict:
    """What must be done today: the refunds to stop, the pending refunds' decisions, the cases."""
    stop = {
        currency: row["at_risk"]
        for (verdict, currency), row in data["tonight"]["verdicts"].items()
        if verdict == "stop"
    }
    return {
        "metrics": {metric.key: metric for metric in data["headline"]},
        "stop_at_risk": stop,
        "decisions": views.rows("report_decisions"),
    }


def _money(views: _Views, data: dict) -> dict:
    """Per currency: at risk, recoverable and owed tonight, each with its change since the night
    before; and the tie-out chart of each currency."""
    nights: dict = defaultdict(dict)
    for row in views.rows("report_night_money"):
        nights[row["run_id"]][row["currency"]] = row
    tonight = nights.get(data["tonight"]["run_id"], {})
    before = nights.get(data["previous"]["run_id"], {}) if data["previous"] else None
    lines = []
    for currency in sorted(set(tonight) | set(before or {})):
        now, then = tonight.get(currency, {}), (before or {}).get(currency, {})
        lines.append(
            {
                "currency": currency,
                "figures": [
                    {
                        "key": key,
                        "value": now.get(key, _ZERO),
                        "delta": None if before is None else now.get(key, _ZERO) - then.get(key, _ZERO),
                    }
                    for key, _ in MONEY_FIGURES
                ],
            }
        )
    return {
        "labels": [label for _, label in MONEY_FIGURES],
        "lines": lines,
        "charts": [_tie_out_chart(currency, row) for currency, row in sorted(tonight.items())],
    }


_ZERO = Decimal("0.00")


def _tie_out_chart(currency: str, row: dict):
    """Where tonight's money of one currency stands: paid out (compliant, in breach), to recover,
    owed to customers, and to stop before payout."""

    def amount(key):
        return float(row[key] or 0)

    return charts.row_chart(
        f"Tie-out ({currency})",
        [
            (
                "Paid out",
                [
                    ("compliant", "#59a14f", amount("paid_compliant")),
                    ("in breach", charts.VERDICT_COLORS["breach"], amount("paid_in_breach")),
                ],
            ),
            ("To recover", [("recoverable", charts.VERDICT_COLORS["breach"], amount("amount_recoverable"))]),
            ("Owed to customers", [("owed", "#76b7b2", amount("amount_owed_to_customers"))]),
            ("To stop (pending)", [("stop", charts.VERDICT_COLORS["stop"], amount("at_risk_stop"))]),
        ],
        key=f"tie-out-{currency}",
        unit=currency,
    )


def _nights(views: _Views) -> list[dict]:
    """The trend's nights, tonight last, each with its verdicts {(verdict, currency): row} and cases."""
    verdicts: dict = defaultdict(dict)
    for row in views.rows("report_night_verdicts"):
        verdicts[row["run_id"]][(row["verdict"], row["currency"])] = row
    cases = {row["run_id"]: row for row in views.rows("report_night_cases")}
    nights = views.rows("report_nights")
    for night in nights:
        night["flag_counts"] = dict(night["flag_counts"] or {})
        night["verdicts"] = verdicts.get(night["run_id"], {})
        night["cases"] = cases.get(night["run_id"], {"total": 0, "open": 0})
    return nights


# --- headline ---------------------------------------------------------------------------------


@dataclass
class Metric:
    key: str
    label: str
    values: list  # one per night, tonight last (None where unknown)
    kind: str = "count"  # count | money
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
        return sum(
            (row[field_name] or 0)
            for (verdict, cur), row in night["verdicts"].items()
            if verdict in verdicts and (currency is None or cur == currency)
        )

    metrics = [
        Metric(
            "refunds_checked",
            "Refunds checked",
            [night["refunds_checked"] for night in nights],
            worse_when="none",
            note="every refund visible on the night",
        ),
        Metric("flags", "Flags", [night["flag_count"] for night in nights], note="refund × rule pairs that fired"),
        Metric(
            "refunds_breach",
            "Refunds in breach",
            [verdict_sum(n, ("breach",), "refunds") for n in nights],
            note="paid or rejected, with a flag",
        ),
        Metric(
            "refunds_stop",
            "Refunds to stop",
            [verdict_sum(n, ("stop",), "refunds") for n in nights],
            note="pending with a flag: stop before payout",
        ),
    ]
    for currency in data["currencies"]:
        breach = verdict_sum(data["tonight"], ("breach",), "at_risk", currency)
        stop = verdict_sum(data["tonight"], ("stop",), "at_risk", currency)
        metrics.append(
            Metric(
                f"at_risk_{currency}",
                f"Money at risk ({currency})",
                [Decimal(verdict_sum(n, ("breach", "stop"), "at_risk", currency)) for n in nights],
                kind="money",
                note=f"breach {formats.money(breach)} · stop {formats.money(stop)}",
                currency=currency,
            )
        )
    metrics += [
        Metric(
            "cases_open",
            "Abuse cases to review",
            [night["cases"]["open"] for night in nights],
            note=f"{data['tonight']['cases']['total']} cases in all",
        ),
        Metric(
            "rows_quarantined",
            "Rows quarantined",
            [night["rows_quarantined"] for night in nights],
            note=f"of {data['tonight']['rows_in']:,} rows in",
        ),
    ]
    return metrics


def _rule_table(views: _Views, data: dict) -> list[dict]:
    """Per rule: flags, refunds and money at risk per currency, tonight and the night before."""
    stats: dict = defaultdict(lambda: {"flags": 0, "refunds": 0, "at_risk": {}})
    for row in views.rows("report_rule_stats"):
        entry = stats[(row["run_id"], row["rule_code"])]
        entry["flags"] += row["flags"]
        entry["refunds"] += row["refunds"]
        entry["at_risk"][row["currency"]] = row["at_risk"]
    tonight_id = data["tonight"]["run_id"]
    before_id = data["previous"]["run_id"] if data["previous"] else None
    codes = [rule["rule_code"] for rule in data["rules"]]
    codes += sorted({code for (_, code) in stats if code not in codes})
    catalog = {rule["rule_code"]: rule for rule in data["rules"]}
    table = []
    for code in codes:
        tonight = stats.get((tonight_id, code), {"flags": 0, "refunds": 0, "at_risk": {}})
        before = stats.get((before_id, code))
        rule = catalog.get(code, {"rule_code": code, "category": "", "severity": "", "summary": "", "color": "#888"})
        table.append(
            {
                **rule,
                "flags": tonight["flags"],
                "refunds": tonight["refunds"],
                "at_risk": tonight["at_risk"],
                "delta": tonight["flags"] - (before or {"flags": 0})["flags"] if before_id else None,
                "at_risk_before": (before or {}).get("at_risk", {}),
            }
        )
    return table


# --- new and resolved flags -------------------------------------------------------------------


def _flag_changes(views: _Views, previous: dict | None) -> dict:
    changes: dict[str, list[dict]] = {"new": [], "resolved": [], "kept": []}
    for flag in views.rows("report_flag_changes"):
        changes[flag["change"]].append(flag)
    new, resolved = changes["new"], changes["resolved"]
    for flag in resolved:
        flag["now"] = _resolution(flag)
    for flag in new[:MAX_FLAG_ROWS] + resolved[:MAX_FLAG_ROWS]:
        flag["evidence_items"] = _evidence_items(_parse(flag["evidence"]))
    return {
        "has_previous": previous is not None,
        "new_count": len(new),
        "resolved_count": len(resolved),
        "kept_count": len(changes["kept"]),
        "new": new[:MAX_FLAG_ROWS],
        "resolved": resolved[:MAX_FLAG_ROWS],
        "new_risk": _sum_by_currency(new),
        "resolved_risk": _sum_by_currency(resolved),
    }


def _resolution(flag: dict) -> str:
    """What became of a resolved flag's refund tonight."""
    if not flag["now_visible"]:
        return "refund not visible tonight (quarantined or gone from the export)"
    status, verdict = flag["now_refund_status"], flag["now_verdict"]
    if status == "rejected" and flag["refund_status"] != "rejected":
        return f"refund now rejected; verdict {verdict}"
    if status != flag["refund_status"]:
        return f"refund now {status}; verdict {verdict}"
    others = ", ".join(flag["now_rule_codes"] or []) or "no other rule"
    return f"rule no longer fires (status {status}; {others}); verdict {verdict}"


def _sum_by_currency(flags: list[dict]) -> dict:
    sums: dict = defaultdict(Decimal)
    for flag in flags:
        sums[flag.get("currency") or "?"] += flag["amount_at_risk"] or 0
    return dict(sorted(sums.items()))


# --- abuse cases ------------------------------------------------------------------------------


def _cases(views: _Views, data: dict) -> dict:
    cases = views.rows("report_cases")
    by_severity: dict = defaultdict(int)
    for case in cases:
        by_severity[case["severity"]] += 1
    shown = cases[:TOP_CASES]
    signals, refunds = views.by_case("report_case_signals"), views.by_case("report_case_refunds")
    accounts, decisions = views.by_case("report_case_accounts"), views.by_case("report_case_decisions")
    events = views.by_case("report_case_events")
    for case in shown:
        case_id = case["case_id"]
        case["signals"] = _case_signals(signals.get(case_id, []))
        case["refunds"] = refunds.get(case_id, [])
        case["accounts"] = accounts.get(case_id, [])
        timeline = events.get(case_id, [])
        case["earlier_events"] = max(0, len(timeline) - TIMELINE_EVENTS)
        case["events"] = timeline[case["earlier_events"] :]
        case["timeline_svg"] = charts.timeline_chart(case["events"], data["zone"], data["run"]["as_of"])
        case["decisions"] = decisions.get(case_id, [])
        case["amounts"] = case.get("amounts_by_currency") or []
    return {
        "total": len(cases),
        "shown": shown,
        "by_severity": dict(by_severity),
        "open": sum(case["to_review"] for case in cases),
    }


def _case_signals(rows: list[dict]) -> list[dict]:
    """The case's signals, one entry per code: a signal firing for several entities of the group
    (LINKED_ENTITIES fires for all of them) is shown once, its evidence merged."""
    merged: dict = {}
    for row in rows:
        entry = merged.setdefault(
            row["signal_code"],
            {
                "signal_code": row["signal_code"],
                "summary": row["summary"],
                "entity_ids": [],
                "refund_ids": [],
                "evidences": [],
            },
        )
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
            merged[key] = dict(zip(entity_ids, values, strict=True))
    return merged


# --- validation and the tie-out ---------------------------------------------------------------


def _validation(views: _Views, run: dict, nights: list[dict]) -> dict:
    files_in = []
    for item in run["input_files"] or []:
        item = dict(item)
        rows_in = item["rows_in"] or 0
        item["share"] = (item["rows_quarantined"] or 0) / rows_in if rows_in else 0.0
        files_in.append(item)
    files_in.sort(key=lambda item: (-item["share"], -(item["rows_quarantined"] or 0), item["source"] or ""))
    checks = views.rows("report_validation_checks")
    return {
        "files": files_in,
        "checks": checks,
        "examples": views.rows("report_validation_examples"),
        "failures": sum(check["failures"] for check in checks),
        "rows_in": run["rows_in"],
        "rows_loaded": run["rows_loaded"],
        "rows_quarantined": run["rows_quarantined"],
        "trend": charts.line_chart(
            "Rows quarantined per night",
            [night["as_of"] for night in nights],
            [("rows quarantined", "#e15759", [night["rows_quarantined"] or 0 for night in nights])],
            y_label="rows",
            key="quarantine-trend",
        ),
    }


def _invariants(views: _Views) -> dict:
    rows = views.rows("report_invariants")
    return {
        "columns": INVARIANT_COLUMNS,
        "rows": rows,
        "total": len(rows),
        "failed": sum(row["passed"] is False for row in rows),
    }


def _daily(views: _Views) -> dict | None:
    """The finance tie-out, transposed: one line per measure, a column per (scope, currency);
    a measure summed as DECIMAL is money."""
    rows = views.rows("report_daily")
    if not rows:
        return None
    measures = [name for name in rows[0] if name not in ("scope", "currency")]
    return {
        "groups": [(row["scope"], row["currency"]) for row in rows],
        "scopes": list(dict.fromkeys(row["scope"] for row in rows)),
        "lines": [
            {
                "measure": name.replace("_", " "),
                "column": name,
                "values": [row[name] for row in rows],
                "money": any(isinstance(row[name], Decimal) for row in rows),
            }
            for name in measures
        ],
    }


# --- evidence ---------------------------------------------------------------------------------


def _parse(text: str | None):
    if not text:
        return {}
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        return {"evidence": text}


def _evidence_items(value) -> list[dict]:
    """Evidence as items to show: a value, or a small table for a list of records."""
    if not isinstance(value, dict):
        return [{"key": "evidence", "text": _inline(value)}]
    items = []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(element, dict) for element in item):
            columns = list(dict.fromkeys(column for element in item for column in element))
            items.append(
                {
                    "key": key,
                    "columns": columns,
                    "rows": [[_inline(element.get(column)) for column in columns] for element in item],
                }
            )
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
    if isinstance(value, Decimal) and formats.decimals(value) > 2:
        return format(value.normalize(), "f")  # minutes 120.000000 -> 120; money keeps its 2 decimals
    return str(value)


# --- masking what is printed ------------------------------------------------------------------


class _Printed:
    """Jinja's finalize hook: sees every value printed. The first rendering collects their texts;
    the next ones print them masked by `masker` (jobs/outputs/masking.py), HTML of charts included."""

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
        if isinstance(value, Markup) and self.html_masker is not None:
            return Markup(self.html_masker.text(str(value)))
        return self.masker.text(str(value))


# --- rendering --------------------------------------------------------------------------------


def render(con, data: dict, shared_copy: bool = True) -> dict[str, str]:
    """{'full': html, 'shared': html (when shared_copy)}."""
    printed = _Printed()
    environment = _environment(printed, data["zone"])
    template = environment.get_template("report.html.j2")
    context = {**data, "charts": _charts(data), "generated_at": datetime.now(data["zone"])}
    template.render(**context, shared=False)  # collects what is printed
    masking.create_known_ids(con)
    printed.mask_with(masking.masker_for(con, printed.texts, identifiers=False))
    pages = {"full": template.render(**context, shared=False)}
    if shared_copy:
        printed.mask_with(masking.masker_for(con, printed.texts, identifiers=True))
        pages["shared"] = template.render(**context, shared=True)
    return pages


def _environment(printed: _Printed, zone: ZoneInfo) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=printed,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        num=formats.number,
        money=formats.money,
        pct=formats.percent,
        when=lambda moment: formats.when(moment, zone),
        delta=formats.delta,
        amounts=formats.amounts,
        day=formats.day,
    )
    return environment


def _charts(data: dict) -> dict:
    """The trend charts of the page: flags per rule, money at risk per currency, sparklines."""
    nights = data["nights"]
    labels = [night["as_of"] for night in nights]
    codes = [rule["rule_code"] for rule in data["rules"]]
    codes += sorted({code for night in nights for code in night["flag_counts"] if code not in codes})
    colors = {rule["rule_code"]: rule["color"] for rule in data["rules"]}
    flags = charts.bar_chart(
        f"Flags per rule, last {len(nights)} night{'s' if len(nights) != 1 else ''}",
        labels,
        [
            (code, colors.get(code, "#888"), [night["flag_counts"].get(code, 0) for night in nights])
            for code in codes
            if any(night["flag_counts"].get(code) for night in nights)
        ],
        y_label="flags",
        key="flags-trend",
    )
    money = []
    for currency in data["currencies"]:
        series = [
            (
                verdict,
                charts.VERDICT_COLORS[verdict],
                [float(night["verdicts"].get((verdict, currency), {}).get("at_risk") or 0) for night in nights],
            )
            for verdict in ("breach", "stop")
        ]
        money.append(
            charts.bar_chart(
                f"Money at risk ({currency}) by verdict",
                labels,
                series,
                y_label=currency,
                key=f"money-trend-{currency}",
                money=True,
            )
        )
    sparks = {
        metric.key: charts.sparkline([float(value or 0) for value in metric.values]) for metric in data["headline"]
    }
    return {"flags": flags, "money": money, "sparks": sparks}
