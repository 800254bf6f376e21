/* @step
appends = ["quarantine"]
reads = ["instant_text", "known_purchases", "missing_order_check", "missing_order_message", "passing_refunds"]
*/
-- SPEC 2, refunds: "order_id ... must name a known order"; "requested_at ... not before the
-- order's purchased_at"; "currency ... equals the order's currency". A refund of a
-- quarantined order is quarantined with that reason.
INSERT INTO quarantine
SELECT 'refunds', refund._line, 'order_id', missing_order_check(refund.order_id), refund.order_id,
       missing_order_message(refund.order_id)
FROM passing_refunds AS refund
WHERE refund.order_id NOT IN (SELECT order_id FROM known_purchases)

UNION ALL
SELECT 'refunds', refund._line, 'currency', 'currency_mismatch', refund.currency,
       'currency must equal the order''s currency ' || purchase.currency
FROM passing_refunds AS refund
JOIN known_purchases AS purchase USING (order_id)
WHERE refund.currency <> purchase.currency

UNION ALL
SELECT 'refunds', refund._line, 'requested_at', 'refund_before_purchase', instant_text(refund.requested_at),
       'requested_at is before the order was purchased (' || instant_text(purchase.purchased_at) || ')'
FROM passing_refunds AS refund
JOIN known_purchases AS purchase USING (order_id)
WHERE refund.requested_at < purchase.purchased_at;
