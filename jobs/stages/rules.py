"""Rules: judge every visible refund against the policy (SPEC section 4).

The shared model (`sql/model/`) prepares one row per refund with its order's figures, the usage
reduced per refund, the earlier live refunds of its entity and its credit parts. Each rule is
one file, `sql/rules/<CODE>.sql`, returning `refund_id, amount_at_risk, evidence`; the runner
collects them into `rule_hits` (policy rules first: UNDER_REFUNDED looks at what they found).
From those hits come `refund_flags` (one row per refund and code) and `refund_verdicts` (one
row per refund).
"""

from __future__ import annotations

from jobs.catalog import CATALOG
from jobs.engine.runner import Runner
from jobs.engine.steps import discover, step

OUTPUTS = ("outputs/refund_flags", "outputs/refund_verdicts")


def evaluate(runner: Runner) -> None:
    """Build the model, run every rule, and leave `refund_flags` and `refund_verdicts`."""
    runner.engine.write_table("rule_catalog", CATALOG.rule_table())
    runner.provide("rule_catalog")
    runner.run(discover("model") + CATALOG.rules + tuple(step(name) for name in OUTPUTS))
