"""Run one rule or signal file on small fixture tables: rows in, rows out (issue #11).

    found = rule_hits("PAST_WINDOW", purchases=[order("O1")],
                      refunds=[paid("R1", "O1", "2026-03-06 00:00:30")])
    assert flagged(found) == {"R1": "100.00"}

Fixture rows are the export rows of tests/exports.py: an empty cell is NULL, as in the CSV,
and a timestamp without an offset is billing time (Asia/Shanghai, UTC+8). The four exports
become tables with the types the loader gives them (jobs/stages/schemas.py); the macros, the shared
model (sql/model/) and, for signals, the linked groups (sql/abuse/) are built from them by
their own steps; then the one rule or signal runs as the night runs it, collected into
`rule_hits` or `signal_hits`. No CSV, no validation, no as_of filter: those need the whole run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
from exports import AS_OF, purchase, refund, status, usage

from jobs.catalog import CATALOG
from jobs.config import Settings
from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.steps import Step, discover, step
from jobs.params import night_params
from jobs.pipeline import SETUP_STEPS
from jobs.stages.rules import evaluate
from jobs.stages.schemas import EXPORTS, SQL_TYPES

# What the model and the linked groups are built by: the steps a rule or signal may read from.
UPSTREAM = (*discover("model"), *discover("abuse"))


# --- fixture rows ---------------------------------------------------------------------------


def order(
    order_id="O1",
    entity_id="E1",
    *,
    account_id=None,
    bought="2026-03-01 10:00:00",
    product="call",
    fingerprint="",
    price="100.00",
    discount="0.00",
    coupon="0.00",
    **overrides,
) -> dict:
    """An order of `entity_id` paid in cash: list price less discount and coupon.
    Its account is A-<entity> unless given, so an account belongs to one entity."""
    cash = f"{Decimal(price) - Decimal(discount) - Decimal(coupon):.2f}"
    return (
        purchase(
            order_id=order_id,
            account_id=account_id or f"A-{entity_id}",
            entity_id=entity_id,
            product=product,
            purchased_at=bought,
            payment_fingerprint=fingerprint,
            list_price=price,
            discount_amount=discount,
            coupon_amount=coupon,
            paid_cash_credit=cash,
        )
        | overrides
    )


def paid(refund_id, order_id, requested_at, processed_at=None, *, amount="100.00", **overrides) -> dict:
    """A refund paid back in cash credit, by default an hour after the request."""
    processed_at = processed_at or (datetime.fromisoformat(requested_at) + timedelta(hours=1)).isoformat(" ")
    return (
        refund(
            refund_id=refund_id,
            order_id=order_id,
            requested_at=requested_at,
            processed_at=processed_at,
            refund_cash_credit=amount,
            refund_amount=amount,
        )
        | overrides
    )


def pending(refund_id, order_id, requested_at, *, amount="100.00") -> dict:
    """A refund not processed yet."""
    return paid(refund_id, order_id, requested_at, amount=amount) | {"status": "pending", "processed_at": ""}


def rejected(refund_id, order_id, requested_at, processed_at=None, *, amount="0.00") -> dict:
    """A refund declined; by default nothing was paid out."""
    return paid(refund_id, order_id, requested_at, processed_at, amount=amount, status="rejected")


def used(minutes, started_at, order_id="O1", *, usage_id="U1", **overrides) -> dict:
    """A usage record of `order_id` ("": free minutes or pay-as-you-go)."""
    return usage(usage_id=usage_id, order_id=order_id, started_at=started_at, minutes=minutes) | overrides


def suspended(account_id, effective_at, reason="content_violation") -> dict:
    return status(account_id=account_id, status="suspended", reason=reason, effective_at=effective_at)


# --- running one step -----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleHit:
    amount_at_risk: str  # DECIMAL(18,2) as text: '0.02'
    evidence: dict


@dataclass(frozen=True)
class SignalHit:
    refund_ids: list[str]
    evidence: dict


def rule_hits(code: str, *, as_of: date = AS_OF, settings: Settings | None = None, **tables) -> dict[str, RuleHit]:
    """What rule `code` finds on the fixture tables, by refund_id. A rule that reads `rule_hits`
    (UNDER_REFUNDED) runs after the rules of the earlier phase (the policy rules), as in the night."""
    rule = _by_code(CATALOG.rules, code)
    earlier = [
        other
        for other in CATALOG.rules
        if "rule_hits" in rule.reads and other.meta["category"] != rule.meta["category"]
    ]
    con = _run([*earlier, rule], _start(as_of, settings, tables))
    rows = con.execute(
        "SELECT refund_id, CAST(amount_at_risk AS VARCHAR), evidence FROM rule_hits "
        "WHERE rule_code = ? ORDER BY refund_id",
        [code],
    ).fetchall()
    return {refund_id: RuleHit(amount, json.loads(evidence)) for refund_id, amount, evidence in rows}


def signal_hits(code: str, *, as_of: date = AS_OF, settings: Settings | None = None, **tables) -> dict[str, SignalHit]:
    """What signal `code` finds on the fixture tables, by entity_id."""
    con = _run([_by_code(CATALOG.signals, code)], _start(as_of, settings, tables))
    rows = con.execute(
        "SELECT entity_id, refund_ids, evidence FROM signal_hits WHERE signal_code = ? ORDER BY entity_id", [code]
    ).fetchall()
    return {entity_id: SignalHit(list(refund_ids), json.loads(evidence)) for entity_id, refund_ids, evidence in rows}


def verdicts(*, as_of: date = AS_OF, settings: Settings | None = None, **tables) -> dict[str, dict]:
    """Every rule, then refund_verdicts (jobs/stages/rules.py evaluate): verdict, rule_codes, amount_at_risk."""
    runner = _start(as_of, settings, tables)
    evaluate(runner)
    rows = runner.engine.con.execute(
        "SELECT refund_id, verdict, rule_codes, CAST(amount_at_risk AS VARCHAR) FROM refund_verdicts ORDER BY refund_id"
    ).fetchall()
    return {
        refund_id: {"verdict": verdict, "rule_codes": codes, "amount_at_risk": amount}
        for refund_id, verdict, codes, amount in rows
    }


def flagged(hits: dict[str, RuleHit]) -> dict[str, str]:
    """refund_id -> amount_at_risk of every hit."""
    return {refund_id: hit.amount_at_risk for refund_id, hit in hits.items()}


def fired(hits: dict[str, SignalHit]) -> dict[str, list[str]]:
    """entity_id -> refund_ids of every hit."""
    return {entity_id: hit.refund_ids for entity_id, hit in hits.items()}


def moment(text: str) -> datetime:
    """A timestamp of evidence ('...+08', '...Z') as an aware datetime, to compare as moments."""
    return datetime.fromisoformat(text)


def _start(as_of: date, settings: Settings | None, tables: dict[str, list[dict]]) -> Runner:
    """A runner over a fresh in-memory DuckDB holding the fixture exports, the rule catalogue
    and what the night sets up first (the macros...), with its parameters for `as_of` and `settings`."""
    settings = settings or Settings()
    con = duckdb.connect()
    con.execute("SET TimeZone = ?", [settings.billing_time_zone])
    for stem, export in EXPORTS.items():
        _create(con, stem, export.columns, tables.pop(stem, ()))
    if tables:
        raise TypeError(f"not an export: {', '.join(tables)}")
    params = night_params(settings, "test-run", as_of, "test", None, datetime.now())
    runner = Runner(DuckDBEngine(con), params, provided=(*EXPORTS, "rule_catalog"))
    runner.engine.write_table("rule_catalog", CATALOG.rule_table())
    runner.run(tuple(step(name) for name in SETUP_STEPS))
    return runner


def _run(targets: list[Step], runner: Runner) -> duckdb.DuckDBPyConnection:
    """Run `targets` after the upstream steps that make what they read."""
    runner.run((*_makers(targets), *targets))
    return runner.engine.con


def _create(con: duckdb.DuckDBPyConnection, stem: str, columns: dict[str, str], rows) -> None:
    """Table `stem` with the loader's column types, holding `rows` (an empty cell is NULL)."""
    con.execute(f"CREATE TABLE {stem} ({', '.join(f'{name} {SQL_TYPES[kind]}' for name, kind in columns.items())})")
    if rows:
        con.executemany(
            f"INSERT INTO {stem} VALUES ({', '.join('?' for _ in columns)})",
            [[None if row[name] == "" else row[name] for name in columns] for row in rows],
        )


def _makers(targets: list[Step]) -> list[Step]:
    """The upstream steps that make what `targets` read, and what those read, transitively."""
    needed, wanted = [], [table for target in targets for table in target.reads]
    while wanted:
        table = wanted.pop()
        for maker in UPSTREAM:
            if table in maker.creates and maker not in needed:
                needed.append(maker)
                wanted.extend(maker.reads)
    return needed


def _by_code(steps: tuple[Step, ...], code: str) -> Step:
    (found,) = [candidate for candidate in steps if candidate.code == code]
    return found
