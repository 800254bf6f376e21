"""What to do with each pending refund tonight: pay, hold or decline (issue 15, docs/decisions.md).

`pending_refund_decisions` (sql/decisions/pending_refund_decisions.sql) turns the night's verdicts,
the cases with their reviewers' decisions and the block and allow lists into one decision per
refund pending on the night. It is built where the cases are, at publishing, from the reviewers'
state and the lists copied in under the warehouse's write lock (jobs/stages/dispositions.py), and I17
proves that every pending refund has exactly one decision before anything is published.
"""

from __future__ import annotations

from jobs.engine.engine import Engine
from jobs.engine.runner import Runner
from jobs.engine.steps import step
from jobs.stages.reconciliation import check_remaining_invariants

DECISIONS = ("decline", "hold", "pay")
# The list tables a run makes before its first stage, to be filled from the warehouse (or left empty).
LIST_STEPS = ("decisions/list_events", "decisions/list_entries")
DECISION_STEP = "decisions/pending_refund_decisions"

_TOTALS_SQL = """
SELECT decision, currency, count(*) AS refunds, CAST(sum(refund_amount) AS DECIMAL(38,2)) AS refund_amount
FROM pending_refund_decisions
GROUP BY decision, currency
ORDER BY list_position(['decline', 'hold', 'pay'], decision), currency
"""


def decide_pending_refunds(runner: Runner) -> None:
    """Build `pending_refund_decisions` from the night's verdicts, cases and lists; check I17."""
    runner.run((step(DECISION_STEP),))
    check_remaining_invariants(runner)


def decision_totals(engine: Engine) -> list[dict]:
    """Refunds and money per decision and currency (decline, hold, pay), for the summary and
    run_results.json."""
    columns, rows = engine.fetch(_TOTALS_SQL, {})
    return [dict(zip(columns, row, strict=False)) for row in rows]
