/* @rule
code = "MINUTES_USED"
position = 2  # in the catalogue (SPEC table order)
category = "policy"
severity = "high"
whole_refund_at_risk = true
summary = "the package's minutes were used before the cut-off"
reads = ["refund_facts", "refund_usage"]
*/
-- Policy 2: "If the package's gifted audio/video call minutes have been used at all, used up
-- or not, it is not refundable."
-- Fires when the order's usage with minutes > 0 and started_at < cut-off sums to more than 0.
SELECT refund.refund_id,
       refund.refund_amount AS amount_at_risk,
       {'minutes_used': used.minutes_before_cutoff,
        'usage_records': used.records_before_cutoff,
        'first_used_at': used.first_used_at,
        'last_used_at': used.last_used_at,
        'purchased_at': refund.purchased_at,
        'cutoff_at': refund.cutoff_at} AS evidence
FROM refund_facts AS refund
JOIN refund_usage AS used USING (refund_id)
WHERE used.minutes_before_cutoff > 0
