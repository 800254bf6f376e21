"""Rules: judge every visible refund against the policy (SPEC section 4).

The shared model (`sql/model/`, in name order) prepares one row per refund with its order's
figures, the usage reduced per refund, the earlier live refunds of its entity and its credit
parts. Each rule is then one file, `sql/rules/<CODE>.sql`, returning
`refund_id, amount_at_risk, evidence`; the rules run in catalogue order (policy first, since
UNDER_REFUNDED looks at what the policy rules found) into `rule_hits`. From those hits come
`refund_flags` (one row per refund and code) and `refund_verdicts` (one row per refund).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from .sqlfiles import read_sql, sql_files


@dataclass(frozen=True)
class Rule:
    """A reason code of SPEC section 4."""

    code: str
    category: str  # policy | reconciliation
    severity: str  # high | medium | low
    whole_refund_at_risk: bool  # SPEC: these codes put the refund's whole amount at risk
    summary: str


RULES = (
    Rule("PAST_WINDOW", "policy", "high", True, "requested after the refund window"),
    Rule("MINUTES_USED", "policy", "high", True, "the package's minutes were used before the cut-off"),
    Rule("CONCURRENT_REFUND", "policy", "high", True, "another refund of the entity within the window"),
    Rule("ACCOUNT_SUSPENDED", "policy", "high", True, "the account is suspended for content or illegal activity"),
    Rule("COUPON_REFUNDED", "policy", "medium", False, "discounts or coupons paid back"),
    Rule("PATH_MISMATCH", "policy", "medium", False, "paid back by another credit type than paid"),
    Rule("DUPLICATE_REFUND", "reconciliation", "high", True, "a second live refund of the same order"),
    Rule("USAGE_AFTER_REFUND", "reconciliation", "medium", False, "the package was used after the payout"),
    Rule("UNDER_REFUNDED", "reconciliation", "low", False, "less paid back than is owed"),
    Rule("REJECTED_WITH_PAYOUT", "reconciliation", "high", False, "a rejected refund paid money out"),
)


def evaluate(con: duckdb.DuckDBPyConnection) -> None:
    """Build the model, run every rule, and leave `refund_flags` and `refund_verdicts`."""
    _create_catalog(con)
    for path in sql_files("model"):
        con.execute(path.read_text(encoding="utf-8"))
    con.execute("CREATE OR REPLACE TABLE rule_hits "
                "(rule_code VARCHAR, refund_id VARCHAR, amount_at_risk DECIMAL(18,2), evidence VARCHAR)")
    for rule in RULES:
        rule_sql = read_sql(f"rules/{rule.code}.sql")
        con.execute(
            f"INSERT INTO rule_hits SELECT ?, refund_id, amount_at_risk, CAST(to_json(evidence) AS VARCHAR) "
            f"FROM ({rule_sql})",
            [rule.code],
        )
    con.execute(read_sql("outputs/refund_flags.sql"))
    con.execute(read_sql("outputs/refund_verdicts.sql"))


def _create_catalog(con) -> None:
    con.execute("CREATE OR REPLACE TABLE rule_catalog (position INTEGER, rule_code VARCHAR, category VARCHAR, "
                "severity VARCHAR, whole_refund_at_risk BOOLEAN, summary VARCHAR)")
    con.executemany(
        "INSERT INTO rule_catalog VALUES (?, ?, ?, ?, ?, ?)",
        [(position, rule.code, rule.category, rule.severity, rule.whole_refund_at_risk, rule.summary)
         for position, rule in enumerate(RULES, start=1)],
    )
