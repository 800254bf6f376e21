/* @step
creates = ["entity_refund_history"]
reads = ["abuse_cases", "purchases", "refund_verdicts", "refund_verdicts_history", "refunds", "runs"]
*/
-- entity_refund_history: every refund of every entity the latest run saw, with its order,
-- its verdict and codes, the night it was first seen and first flagged (from the history
-- tables), and the entity's abuse case tonight, if any (in_case_evidence: whether this refund
-- is among the case's refunds). Filter on entity_id:
--   SELECT * FROM entity_refund_history WHERE entity_id = 'ENT0010231' ORDER BY requested_at;
-- Times are TIMESTAMPTZ; request_day is the billing day of requested_at; processed_at is
-- empty for a refund the run sees as pending (processed after as_of).
CREATE OR REPLACE VIEW entity_refund_history AS
WITH latest_run AS (
    SELECT billing_time_zone FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1
),
seen AS (
    SELECT refund_id,
           min(as_of) AS first_seen_as_of,
           min(as_of) FILTER (WHERE verdict IN ('breach', 'stop')) AS first_flagged_as_of,
           count(DISTINCT as_of) AS nights_seen
    FROM refund_verdicts_history
    GROUP BY refund_id
),
entity_cases AS (
    SELECT unnest(entity_ids) AS entity_id, case_id, disposition AS case_disposition, refund_ids AS case_refund_ids
    FROM abuse_cases
)
SELECT verdict.entity_id,
       verdict.account_id,
       verdict.refund_id,
       verdict.order_id,
       purchase.product,
       purchase.package_kind,
       purchase.edition,
       purchase.purchased_at,
       refund.requested_at,
       CAST(timezone((SELECT billing_time_zone FROM latest_run), refund.requested_at) AS DATE) AS request_day,
       verdict.refund_status,
       CASE WHEN verdict.refund_status <> 'pending' THEN refund.processed_at END AS processed_at,
       verdict.currency,
       CAST(purchase.paid_cash_credit + purchase.paid_commission_credit + purchase.paid_free_credit
            AS DECIMAL(18,2)) AS refundable_amount,
       verdict.refund_amount,
       verdict.verdict,
       verdict.rule_codes,
       verdict.amount_at_risk,
       seen.first_seen_as_of,
       seen.first_flagged_as_of,
       seen.nights_seen,
       entity_cases.case_id,
       entity_cases.case_disposition,
       coalesce(list_contains(entity_cases.case_refund_ids, verdict.refund_id), false) AS in_case_evidence,
       verdict.as_of,
       verdict.run_id
FROM refund_verdicts AS verdict
JOIN refunds AS refund USING (refund_id)
JOIN purchases AS purchase ON purchase.order_id = verdict.order_id
LEFT JOIN seen USING (refund_id)
LEFT JOIN entity_cases ON entity_cases.entity_id = verdict.entity_id
ORDER BY verdict.entity_id, refund.requested_at, verdict.refund_id;
