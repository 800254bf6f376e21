"""`refund-recon eligibility`: may this order be refunded now, and why not (issue 15).

For a support agent working a ticket, before resources are returned: the order's full refund
(what was paid in cash, commission and free credits; discounts and coupons are withheld) is
judged as a pending refund requested `--at` (default now), by the night's own steps (the model,
every rule of sql/rules/, refund_verdicts) over the records the warehouse holds from its latest
night, the order's other refunds included. So the answer is what the next night would flag for
such a refund, as far as the warehouse knows (usage or suspensions not delivered yet are not seen).
The entity's abuse case and the list entries that match are shown beside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import duckdb

from jobs.config import ConfigError, Settings, load_settings
from jobs.engine.engine import DuckDBEngine, warehouse_has
from jobs.engine.runner import Runner
from jobs.engine.steps import step
from jobs.options import config_option, db_option
from jobs.params import night_params
from jobs.pipeline import SETUP_STEPS
from jobs.stages.rules import evaluate
from jobs.stages.schemas import EXPORTS

CHECK_ID = "eligibility-check"  # the refund_id of the refund asked about


class EligibilityError(Exception):
    """No warehouse, or no such order in it (one line, exit 1)."""


def check(db_path: Path, order_id: str, at: datetime, settings: Settings) -> dict:
    """The verdict of a full refund of `order_id` requested at `at`, with its reasons and money."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = ?", [settings.billing_time_zone])
        _attach(con, db_path)
        _judge(con, order_id, at, settings)
        return _answer(con, order_id, at, settings)
    finally:
        con.close()


def _attach(con, db_path: Path) -> None:
    if not db_path.is_file():
        raise EligibilityError(f"{db_path}: no warehouse here (run `refund-recon run` first, or pass --db)")
    try:
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(db_path)])
    except duckdb.Error as error:
        raise EligibilityError(f"{db_path}: cannot open the warehouse ({str(error).splitlines()[0]})") from None
    if not warehouse_has(con, "abuse_cases"):
        raise EligibilityError(f"{db_path}: no night in this warehouse yet")


def _judge(con, order_id: str, at: datetime, settings: Settings) -> None:
    """The warehouse's records, plus the refund asked about, judged by the night's rules."""
    for stem, export in EXPORTS.items():
        con.execute(f"CREATE TABLE {stem} AS SELECT {', '.join(export.columns)} FROM warehouse.{stem}")
    if not con.execute("SELECT count(*) FROM purchases WHERE order_id = ?", [order_id]).fetchone()[0]:
        raise EligibilityError(f"no order {order_id} in the warehouse")
    con.execute(
        "INSERT INTO refunds BY NAME SELECT ? AS refund_id, order_id, ? AS requested_at, 'pending' AS status, "
        "NULL AS processed_at, currency, paid_cash_credit AS refund_cash_credit, "
        "paid_commission_credit AS refund_commission_credit, paid_free_credit AS refund_free_credit, "
        "paid_cash_credit + paid_commission_credit + paid_free_credit AS refund_amount "
        "FROM purchases WHERE order_id = ?",
        [CHECK_ID, at, order_id],
    )
    night = at.astimezone(ZoneInfo(settings.billing_time_zone)).date()
    runner = Runner(
        DuckDBEngine(con), night_params(settings, CHECK_ID, night, "eligibility", None, at), provided=EXPORTS
    )
    runner.run(tuple(step(name) for name in SETUP_STEPS))
    evaluate(runner)


_FACTS_SQL = """
SELECT facts.order_id, facts.account_id, facts.entity_id, facts.currency, facts.purchased_at,
       facts.refundable_amount, facts.discount_amount, facts.coupon_amount,
       facts.days_after_purchase,
       coalesce(used.minutes_before_cutoff, 0) AS minutes_used,
       verdict.verdict, verdict.rule_codes
FROM refund_facts AS facts
JOIN refund_verdicts AS verdict USING (refund_id)
LEFT JOIN refund_usage AS used USING (refund_id)
WHERE refund_id = ?
"""
_CASE_SQL = (
    "SELECT case_id, disposition, score, signal_codes FROM warehouse.abuse_cases WHERE list_contains(entity_ids, ?)"
)
_LISTS_SQL = """
SELECT list_name, kind, value, reason, expires_at FROM warehouse.list_entries
WHERE (kind = 'entity' AND value = ?) OR (kind = 'account' AND value = ?)
   OR (kind = 'fingerprint' AND value = (SELECT payment_fingerprint FROM purchases WHERE order_id = ?))
ORDER BY list_name, kind
"""


def _answer(con, order_id: str, at: datetime, settings: Settings) -> dict:
    cursor = con.execute(_FACTS_SQL, [CHECK_ID])
    facts = dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=False))
    flags = con.execute(
        "SELECT rule_code, evidence FROM refund_flags WHERE refund_id = ? ORDER BY rule_code", [CHECK_ID]
    ).fetchall()
    case = con.execute(_CASE_SQL, [facts["entity_id"]]).fetchone()
    entries = (
        con.execute(_LISTS_SQL, [facts["entity_id"], facts["account_id"], order_id]).fetchall()
        if warehouse_has(con, "list_entries")
        else []
    )
    return {
        "order_id": order_id,
        "at": at.isoformat(),
        "entity_id": facts["entity_id"],
        "account_id": facts["account_id"],
        "refundable": facts["verdict"] == "compliant",
        "rule_codes": list(facts["rule_codes"]),
        "evidence": {code: json.loads(evidence) for code, evidence in flags},
        "days_left_in_window": max(settings.refund_window_days - 1 - facts["days_after_purchase"], 0),
        "minutes_used": facts["minutes_used"],
        "refund_amount": facts["refundable_amount"],
        "withheld_discount": facts["discount_amount"],
        "withheld_coupon": facts["coupon_amount"],
        "currency": facts["currency"],
        "abuse_case": None
        if case is None
        else dict(zip(("case_id", "disposition", "score", "signal_codes"), case, strict=False)),
        "list_entries": [
            {"list": name, "kind": kind, "reason": reason, "expired": expires is not None and expires <= at}
            for name, kind, _, reason, expires in entries
        ],
    }


def answer_lines(answer: dict) -> list[str]:
    """The answer for an agent: yes or no, why, and the money."""
    verdict = "REFUNDABLE" if answer["refundable"] else "NOT REFUNDABLE"
    lines = [
        f"order {answer['order_id']} (entity {answer['entity_id']}, account {answer['account_id']}): "
        f"{verdict} at {answer['at']}"
    ]
    lines += [
        f"  breaks {code}: {json.dumps(answer['evidence'][code], ensure_ascii=False)}" for code in answer["rule_codes"]
    ]
    lines.append(
        f"  days left in the window (billing days after today): {answer['days_left_in_window']}; "
        f"minutes used: {format(answer['minutes_used'].normalize(), 'f')}"
    )
    lines.append(
        f"  would refund {answer['refund_amount']} {answer['currency']}; withheld: discount "
        f"{answer['withheld_discount']}, coupon {answer['withheld_coupon']}"
    )
    case = answer["abuse_case"]
    if case:
        lines.append(
            f"  abuse case {case['case_id']} ({case['disposition']}, score {case['score']:.1f}: "
            f"{', '.join(case['signal_codes'])})"
        )
    lines += [
        f"  on the {entry['list']} list by {entry['kind']}: {entry['reason']}"
        + (" (expired, ignored)" if entry["expired"] else "")
        for entry in answer["list_entries"]
    ]
    return lines


@click.command("eligibility")
@click.option("--order-id", required=True, help="The order a customer asks to refund.")
@click.option(
    "--at",
    "at_text",
    help="When the refund would be requested (ISO 8601; without an offset: billing time). Default: now.",
)
@config_option("The configuration the nights run with.")
@db_option("The DuckDB warehouse (read only).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def eligibility_command(
    order_id: str, at_text: str | None, config_path: Path | None, db_path: Path, output_format: str
) -> None:
    """May ORDER be refunded now? The night's rules on a full refund of it; exit 0 either way."""
    try:
        settings = load_settings(config_path)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    at = _moment(at_text, ZoneInfo(settings.billing_time_zone))
    try:
        answer = check(db_path, order_id, at, settings)
    except EligibilityError as error:
        click.echo(f"refund-recon: {error}", err=True)
        raise SystemExit(1) from None
    click.echo(
        json.dumps(answer, indent=2, default=str) if output_format == "json" else "\n".join(answer_lines(answer))
    )


def _moment(text: str | None, zone: ZoneInfo) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="'--at'") from None
    if moment.year < 2000 or moment.year > datetime.now().year + 1:
        raise click.BadParameter(f"{text!r} is out of range", param_hint="'--at'")
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
