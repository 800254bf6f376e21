/* @rule
code = "REJECTED_WITH_PAYOUT"
position = 10  # in the catalogue (SPEC table order)
category = "reconciliation"
severity = "high"
whole_refund_at_risk = false
summary = "a rejected refund paid money out"
reads = ["refund_facts"]
*/
-- Reconciliation: Policy 6, "Refunds may be declined when abuse is suspected": a declined
-- refund pays nothing back.
-- Fires when a rejected refund has refund_amount > 0.01; at risk: the refund_amount.
SELECT refund_id,
       refund_amount AS amount_at_risk,
       {'refund_amount': refund_amount,
        'processed_at': processed_at} AS evidence
FROM refund_facts
WHERE refund_status = 'rejected'
  AND refund_amount > 0.01
