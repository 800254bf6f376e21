/* @step
appends = ["quarantine"]
reads = ["instant_text", "known_purchases", "missing_order_check", "missing_order_message", "passing_usage"]
*/
-- SPEC 2, usage: "a usage row whose order_id is not null must name a known order and must
-- not start before 00:00 (billing time) of that order's purchase day". A usage row of a
-- quarantined order is quarantined with that reason.
INSERT INTO quarantine
SELECT 'usage', usage_row._line, 'order_id', missing_order_check(usage_row.order_id), usage_row.order_id,
       missing_order_message(usage_row.order_id)
FROM passing_usage AS usage_row
WHERE usage_row.order_id IS NOT NULL
  AND usage_row.order_id NOT IN (SELECT order_id FROM known_purchases)

UNION ALL
SELECT 'usage', usage_row._line, 'started_at', 'usage_before_purchase_day', instant_text(usage_row.started_at),
       'started_at is before 00:00 of the order''s purchase day ' || billing_day(purchase.purchased_at)
           || ' (billing time)'
FROM passing_usage AS usage_row
JOIN known_purchases AS purchase USING (order_id)
WHERE billing_day(usage_row.started_at) < billing_day(purchase.purchased_at);
