/* @step
creates = ["earlier_live_refunds"]
reads = ["refund_facts"]
params = ["refund_window_days"]
*/
-- For each live refund, the other live refunds of its entity ordered earlier by
-- (requested_at, refund_id): what CONCURRENT_REFUND and DUPLICATE_REFUND look at. Pairs
-- further apart than the refund window matter only when they share the order.
CREATE OR REPLACE TABLE earlier_live_refunds AS
SELECT this.refund_id,
       earlier.refund_id AS earlier_refund_id,
       earlier.order_id AS earlier_order_id,
       earlier.account_id AS earlier_account_id,
       earlier.requested_at AS earlier_requested_at,
       earlier.refund_status AS earlier_status,
       earlier.order_id = this.order_id AS same_order,
       date_diff('day', earlier.request_day, this.request_day) AS billing_days_apart
FROM refund_facts AS this
JOIN refund_facts AS earlier
  ON earlier.entity_id = this.entity_id
 AND (earlier.requested_at < this.requested_at
      OR (earlier.requested_at = this.requested_at AND earlier.refund_id < this.refund_id))
WHERE this.is_live
  AND earlier.is_live
  AND (earlier.order_id = this.order_id
       OR date_diff('day', earlier.request_day, this.request_day) <= getvariable('refund_window_days') - 1);
