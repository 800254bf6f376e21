/* @invariant
code = "I16"
name = "no_refund_judged_whose_latest_delivery_is_quarantined"
reads = ["delivered_purchases", "delivered_refunds", "quarantined_keys_purchases", "quarantined_keys_refunds", "refund_flags", "refund_verdicts", "refunds", "stored_purchases", "stored_refunds"]
*/
-- No refund is judged on a stale version: a refund whose latest delivery is quarantined (its row
-- tonight, or a version stored as quarantined and not redelivered since) has no verdict and no
-- flag, and neither has a refund of an order whose latest delivery is quarantined. Such a record
-- is reported in validation_errors instead (docs/operations.md).
WITH withheld_orders AS (
    SELECT order_id FROM quarantined_keys_purchases
    UNION
    SELECT order_id FROM stored_purchases WHERE _quarantined
        AND order_id NOT IN (SELECT order_id FROM delivered_purchases)
),
withheld_refunds AS (
    SELECT refund_id, 'its row tonight is quarantined' AS reason FROM quarantined_keys_refunds
    UNION ALL
    SELECT refund_id, 'its latest delivery was quarantined' FROM stored_refunds WHERE _quarantined
        AND refund_id NOT IN (SELECT refund_id FROM delivered_refunds)
        AND refund_id NOT IN (SELECT refund_id FROM quarantined_keys_refunds)
),
judged AS (
    SELECT refund_id FROM refund_verdicts
    UNION
    SELECT refund_id FROM refund_flags
),
problems AS (
    SELECT judged.refund_id, withheld_refunds.reason
    FROM judged JOIN withheld_refunds USING (refund_id)
    UNION ALL
    SELECT judged.refund_id, 'its order ' || refunds.order_id || ' is withheld'
    FROM judged JOIN refunds USING (refund_id)
    WHERE refunds.order_id IN (SELECT order_id FROM withheld_orders)
)
SELECT count(*) = 0 AS passed,
       'no verdict or flag for ' || (SELECT count(*) FROM withheld_refunds) || ' withheld refunds and the refunds of '
           || (SELECT count(*) FROM withheld_orders) || ' withheld orders' AS expected,
       count(DISTINCT refund_id) || ' of them judged' AS actual,
       coalesce(string_agg(refund_id || ': ' || reason, '; ' ORDER BY refund_id),
                'no refund is judged on a stale version') AS detail
FROM problems;
