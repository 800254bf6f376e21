/* @rule
code = "CONCURRENT_REFUND"
position = 3  # in the catalogue (SPEC table order)
category = "policy"
severity = "high"
whole_refund_at_risk = true
summary = "another refund of the entity within the window"
reads = ["earlier_live_refunds", "refund_facts"]
params = ["refund_window_days"]
*/
-- Policy 3: "For a single Tencent Cloud entity ... one package or feature package can be
-- refunded at a time within 5 days."
-- Fires when another live refund of the same entity, ordered earlier by (requested_at,
-- refund_id), was requested at most refund_window_days - 1 billing days before this one.
SELECT refund.refund_id,
       refund.refund_amount AS amount_at_risk,
       {'entity_id': refund.entity_id,
        'requested_at': refund.requested_at,
        'earlier_refund_id': arg_max(earlier.earlier_refund_id, (earlier.earlier_requested_at, earlier.earlier_refund_id)),
        'earlier_order_id': arg_max(earlier.earlier_order_id, (earlier.earlier_requested_at, earlier.earlier_refund_id)),
        'earlier_account_id': arg_max(earlier.earlier_account_id, (earlier.earlier_requested_at, earlier.earlier_refund_id)),
        'earlier_requested_at': max(earlier.earlier_requested_at),
        'billing_days_apart': min(earlier.billing_days_apart),
        'earlier_refund_ids': list(earlier.earlier_refund_id ORDER BY earlier.earlier_requested_at, earlier.earlier_refund_id),
        'refund_window_days': getvariable('refund_window_days')} AS evidence
FROM refund_facts AS refund
JOIN earlier_live_refunds AS earlier USING (refund_id)
WHERE earlier.billing_days_apart <= getvariable('refund_window_days') - 1
GROUP BY refund.refund_id, refund.refund_amount, refund.entity_id, refund.requested_at
