/* @rule
code = "UNDER_REFUNDED"
position = 9  # in the catalogue (SPEC table order)
category = "reconciliation"
severity = "low"
whole_refund_at_risk = false
summary = "less paid back than is owed"
reads = ["refund_facts", "rule_catalog", "rule_hits"]
*/
-- Reconciliation: Policy 5, "A qualifying refund is a full refund of what was paid with cash
-- credits, commission credits or free credits."
-- Fires when a paid refund on which no policy rule fired has refund_amount < refundable
-- amount - 0.01; at risk: the shortfall, owed to the customer. Runs after the policy rules.
SELECT refund_id,
       refundable_amount - refund_amount AS amount_at_risk,
       {'refund_amount': refund_amount,
        'refundable_amount': refundable_amount,
        'shortfall': refundable_amount - refund_amount} AS evidence
FROM refund_facts
WHERE refund_status = 'paid'
  AND exceeds_by_more_than_a_cent(refundable_amount, refund_amount)
  AND refund_id NOT IN (
      SELECT refund_id FROM rule_hits JOIN rule_catalog USING (rule_code) WHERE category = 'policy'
  )
