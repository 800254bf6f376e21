/* @invariant
code = "I17"
name = "every_pending_refund_has_exactly_one_decision"
reads = ["pending_refund_decisions", "refund_facts", "refund_verdicts"]
*/
-- Every refund the run sees as pending (refund_facts) has exactly one row in pending_refund_decisions, with a
-- decision of pay, hold or decline; the table holds no other refund; and every refund whose
-- verdict is `stop` is declined: no list entry lets a rule breach through (docs/decisions.md).
WITH pending AS (
    SELECT refund_id, verdict.verdict
    FROM refund_facts LEFT JOIN refund_verdicts AS verdict USING (refund_id)
    WHERE refund_facts.refund_status = 'pending'
),
decided AS (
    SELECT refund_id, count(*) AS decisions, min(decision) AS decision,
           bool_and(decision IN ('pay', 'hold', 'decline')) AS known
    FROM pending_refund_decisions GROUP BY refund_id
),
problems AS (
    SELECT coalesce(pending.refund_id, decided.refund_id) AS refund_id,
           CASE WHEN decided.refund_id IS NULL THEN 'no decision'
                WHEN pending.refund_id IS NULL THEN 'decision for a refund that is not pending'
                WHEN decided.decisions <> 1 THEN decided.decisions || ' decisions'
                WHEN NOT decided.known THEN 'decision ' || decided.decision || ' is not pay, hold or decline'
                ELSE 'verdict stop but decision ' || decided.decision END AS problem
    FROM pending
    FULL OUTER JOIN decided USING (refund_id)
    WHERE decided.refund_id IS NULL OR pending.refund_id IS NULL OR decided.decisions <> 1 OR NOT decided.known
       OR (pending.verdict = 'stop' AND decided.decision <> 'decline')
)
SELECT count(*) = 0 AS passed,
       (SELECT count(*) FROM pending) || ' pending refunds, one decision each, every stop declined' AS expected,
       (SELECT count(*) FROM pending_refund_decisions) || ' decisions for '
           || (SELECT count(DISTINCT refund_id) FROM pending_refund_decisions) || ' refunds' AS actual,
       coalesce(string_agg(refund_id || ': ' || problem, '; ' ORDER BY refund_id),
                'every pending refund has exactly one decision') AS detail
FROM problems;
