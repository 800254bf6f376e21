/* @rule
code = "USAGE_AFTER_REFUND"
position = 8  # in the catalogue (SPEC table order)
category = "reconciliation"
severity = "medium"
whole_refund_at_risk = false
summary = "the package was used after the payout"
reads = ["refund_facts", "refund_usage"]
*/
-- Reconciliation: Policy 2, "If the package's gifted audio/video call minutes have been used
-- at all ... it is not refundable", seen after the money went back: the package kept working.
-- Fires when a paid refund's order has usage with minutes > 0 and started_at >= processed_at.
SELECT refund.refund_id,
       refund.refund_amount AS amount_at_risk,
       {'processed_at': refund.processed_at,
        'minutes_after_payout': used.minutes_after_payout,
        'usage_records_after_payout': used.records_after_payout,
        'first_used_after_payout': used.first_used_after_payout} AS evidence
FROM refund_facts AS refund
JOIN refund_usage AS used USING (refund_id)
WHERE refund.refund_status = 'paid'
  AND used.minutes_after_payout > 0
