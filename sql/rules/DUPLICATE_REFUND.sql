/* @rule
code = "DUPLICATE_REFUND"
position = 7  # in the catalogue (SPEC table order)
category = "reconciliation"
severity = "high"
whole_refund_at_risk = true
summary = "a second live refund of the same order"
reads = ["earlier_live_refunds", "refund_facts"]
*/
-- Reconciliation: an order is refunded once. Policy 5: "A qualifying refund is a full
-- refund of what was paid", so a second live refund of the same order pays out twice.
-- Fires when another live refund of the same order is ordered earlier by
-- (requested_at, refund_id).
SELECT refund.refund_id,
       refund.refund_amount AS amount_at_risk,
       {'order_id': refund.order_id,
        'earlier_refund_ids': list(earlier.earlier_refund_id ORDER BY earlier.earlier_requested_at, earlier.earlier_refund_id),
        'first_refund_id': arg_min(earlier.earlier_refund_id, (earlier.earlier_requested_at, earlier.earlier_refund_id)),
        'first_requested_at': min(earlier.earlier_requested_at),
        'first_status': arg_min(earlier.earlier_status, (earlier.earlier_requested_at, earlier.earlier_refund_id))} AS evidence
FROM refund_facts AS refund
JOIN earlier_live_refunds AS earlier USING (refund_id)
WHERE earlier.same_order
GROUP BY refund.refund_id, refund.refund_amount, refund.order_id
