"""`refund-recon backtest`: what a candidate configuration would have done on the stored nights (issue 15).

Each stored night from --from to --to is replayed from the warehouse's records with the candidate
settings, in memory, without publishing (jobs/pipeline.py `run(..., publish_results=False)`: the
warehouse is only attached read-only, so its file does not change by a byte). The replay reads the
reviewers' decisions and the lists as they stand now. Beside it stands what the night published
(its latest run: `abuse_cases_history`, `abuse_signals_history`, `pending_refund_decisions_history`).

A case is compared by its group (its sorted entity ids), not its id: a replay does not know which
id the night before gave a group. A group is reviewed when a case holding exactly those entities on
that night has a latest decision `confirmed` or `false_positive`; precision is confirmed / (confirmed
+ false positive) over the reviewed groups a configuration raises.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import click
import duckdb

from jobs.config import ConfigError, Settings, load_settings
from jobs.errors import first_line
from jobs.options import config_option, db_option
from jobs.pipeline import RunFailed, run
from jobs.stages.history import HistoryError
from jobs.tools.warehouse import reading

Group = tuple[str, ...]

# One night's outcome, from the tables a run makes (a replay's) or their history (a stored night's).
_CASES_SQL = "SELECT list_sort(entity_ids), signal_codes, score FROM {cases} WHERE run_id = ?"
_SIGNALS_SQL = "SELECT signal_code, count(*) FROM {signals} WHERE run_id = ? GROUP BY ALL"
_HOLDS_SQL = (
    "SELECT currency, count(*), sum(refund_amount) FROM {decisions} WHERE run_id = ? AND decision = 'hold' "
    "GROUP BY ALL ORDER BY currency"
)
_LATEST_RUNS_SQL = """
SELECT as_of, arg_max(run_id, finished_at) FROM runs WHERE as_of BETWEEN ? AND ? GROUP BY as_of ORDER BY as_of
"""
# The groups reviewers decided, on the nights their cases were raised.
_REVIEWED_SQL = """
WITH latest AS (
    SELECT case_id, arg_max(disposition, decided_at) AS disposition FROM case_dispositions GROUP BY case_id
)
SELECT DISTINCT cases.run_id, list_sort(cases.entity_ids), latest.disposition
FROM abuse_cases_history AS cases JOIN latest USING (case_id)
WHERE latest.disposition IN ('confirmed', 'false_positive')
"""


class BacktestError(Exception):
    """The backtest cannot run (no warehouse, no stored night in the range); one line."""


@dataclass
class Outcome:
    """What one configuration did on one night."""

    cases: dict[Group, dict] = field(default_factory=dict)
    signals: Counter = field(default_factory=Counter)
    holds: dict[str, dict] = field(default_factory=dict)  # currency -> refunds, amount

    def summary(self) -> dict:
        return {"cases": len(self.cases), "holds": self.holds}


def read_outcome(con: duckdb.DuckDBPyConnection, run_id: str, history: bool) -> Outcome:
    """A run's cases, signals and holds, from its own tables or (`history`) the warehouse's history."""
    suffix = "_history" if history else ""
    names = {
        "cases": f"abuse_cases{suffix}",
        "signals": f"abuse_signals{suffix}",
        "decisions": f"pending_refund_decisions{suffix}",
    }
    outcome = Outcome()
    for group, codes, score in con.execute(_CASES_SQL.format(**names), [run_id]).fetchall():
        outcome.cases[tuple(group)] = {"signal_codes": list(codes), "score": score}
    outcome.signals.update(dict(con.execute(_SIGNALS_SQL.format(**names), [run_id]).fetchall()))
    if _has_table(con, names["decisions"]):
        outcome.holds = {
            currency: {"refunds": count, "amount": amount}
            for currency, count, amount in con.execute(_HOLDS_SQL.format(**names), [run_id]).fetchall()
        }
    return outcome


def backtest(db_path: Path, first: date, last: date, candidate: Settings) -> dict:
    """Replay the stored nights from `first` to `last` with `candidate`; compare with what they published."""
    with reading(db_path) as con:
        nights = con.execute(_LATEST_RUNS_SQL, [first, last]).fetchall()
        if not nights:
            raise BacktestError(f"{db_path}: no stored night from {first} to {last}")
        stored = {night: read_outcome(con, run_id, history=True) for night, run_id in nights}
        reviewed = _reviewed(con, dict((run_id, night) for night, run_id in nights))
    replayed = {night: _replay(candidate, db_path, night) for night, _ in nights}
    return _compare(stored, replayed, reviewed)


def _replay(settings: Settings, db_path: Path, night: date) -> Outcome:
    quiet = logging.getLogger("refund_recon")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        result = run(settings, None, night, db_path, publish_results=False)
    except (HistoryError, RunFailed) as error:
        raise BacktestError(f"replaying {night} failed: {first_line(error)}") from None
    finally:
        quiet.level = level
    return read_outcome(result.con, result.run_id, history=False)


def _reviewed(con, nights_by_run: dict[str, date]) -> dict[tuple[date, Group], str]:
    return {
        (nights_by_run[run_id], tuple(group)): disposition
        for run_id, group, disposition in con.execute(_REVIEWED_SQL).fetchall()
        if run_id in nights_by_run
    }


def _compare(stored: dict[date, Outcome], replayed: dict[date, Outcome], reviewed: dict) -> dict:
    """The side-by-side document: per night, signals, precision, and the reviewed groups that differ."""
    configs = {"current": stored, "candidate": replayed}
    raised = {
        name: {(night, group) for night, outcome in outcomes.items() for group in outcome.cases}
        for name, outcomes in configs.items()
    }
    return {
        "nights": [
            {
                "as_of": night.isoformat(),
                "current": stored[night].summary(),
                "candidate": replayed[night].summary(),
                "same_cases": stored[night].cases == replayed[night].cases,
            }
            for night in stored
        ],
        "signals": {
            name: dict(sum((outcome.signals for outcome in outcomes.values()), Counter()))
            for name, outcomes in configs.items()
        },
        "precision": {name: _precision(raised[name], reviewed) for name in configs},
        "missed": _listed(raised["current"] - raised["candidate"], reviewed, only_reviewed=True),
        "newly_raised": _listed(raised["candidate"] - raised["current"], reviewed, only_reviewed=False),
    }


def _precision(raised: set, reviewed: dict) -> dict:
    outcome = Counter(reviewed[key] for key in raised if key in reviewed)
    judged = outcome["confirmed"] + outcome["false_positive"]
    return {
        "confirmed": outcome["confirmed"],
        "false_positive": outcome["false_positive"],
        "precision": round(outcome["confirmed"] / judged, 3) if judged else None,
    }


def _listed(keys: set, reviewed: dict, only_reviewed: bool) -> list[dict]:
    return [
        {"as_of": night.isoformat(), "entity_ids": list(group), "disposition": reviewed.get((night, group))}
        for night, group in sorted(keys)
        if not only_reviewed or (night, group) in reviewed
    ]


# --- printing -----------------------------------------------------------------------------------


def text_lines(document: dict) -> list[str]:
    """The document side by side, for a terminal."""
    lines = [f"{'night':<12}{'cases now':>10}{'candidate':>10}  {'holds now':<28}{'holds candidate':<28}"]
    for night in document["nights"]:
        lines.append(
            f"{night['as_of']:<12}{night['current']['cases']:>10}{night['candidate']['cases']:>10}  "
            f"{_holds(night['current']['holds']):<28}{_holds(night['candidate']['holds']):<28}"
        )
    lines.append("signals fired (entity-nights): now / candidate")
    codes = sorted(set(document["signals"]["current"]) | set(document["signals"]["candidate"]))
    lines += [
        f"  {code:<26}{document['signals']['current'].get(code, 0):>6} / "
        f"{document['signals']['candidate'].get(code, 0)}"
        for code in codes
    ]
    for name in ("current", "candidate"):
        item = document["precision"][name]
        shown = "-" if item["precision"] is None else f"{item['precision']:.3f}"
        lines.append(
            f"precision {name}: {shown} ({item['confirmed']} confirmed, {item['false_positive']} false "
            f"positive among the reviewed cases it raises)"
        )
    for key, title in (
        ("missed", "reviewed cases the candidate would miss"),
        ("newly_raised", "cases only the candidate raises"),
    ):
        lines.append(f"{title}: {len(document[key])}")
        lines += [
            f"  {item['as_of']}  {', '.join(item['entity_ids'])}"
            + (f"  ({item['disposition']})" if item["disposition"] else "")
            for item in document[key]
        ]
    return lines


def _holds(holds: dict) -> str:
    return "; ".join(f"{item['refunds']} {item['amount']:,.2f} {currency}" for currency, item in holds.items()) or "0"


def _json(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value))


def _has_table(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0] > 0


@click.command("backtest")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First night (YYYY-MM-DD).")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last night (YYYY-MM-DD).")
@config_option("The candidate configuration (TOML); without it, the defaults.")
@db_option("The DuckDB warehouse (read only).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def backtest_command(first, last, config_path: Path | None, db_path: Path, output_format: str) -> None:
    """Replay the stored nights with a candidate configuration, beside what they published. Writes nothing."""
    try:
        candidate = load_settings(config_path)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    try:
        document = backtest(db_path, first.date(), last.date(), candidate)
    except BacktestError as error:
        click.echo(f"refund-recon: {error}", err=True)
        raise SystemExit(1) from None
    click.echo(
        json.dumps(document, indent=2, default=_json) if output_format == "json" else "\n".join(text_lines(document))
    )
