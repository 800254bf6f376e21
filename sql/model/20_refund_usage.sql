/* @step
creates = ["refund_usage"]
reads = ["refund_facts", "usage"]
*/
-- The usage export reduced once, per refund of a live refund's order, for every rule that
-- needs minutes (MINUTES_USED, USAGE_AFTER_REFUND). Only records with minutes > 0 count.
CREATE OR REPLACE TABLE refund_usage AS
SELECT refund.refund_id,
       sum(used.minutes) FILTER (WHERE used.started_at < refund.cutoff_at) AS minutes_before_cutoff,
       count(*) FILTER (WHERE used.started_at < refund.cutoff_at) AS records_before_cutoff,
       min(used.started_at) FILTER (WHERE used.started_at < refund.cutoff_at) AS first_used_at,
       max(used.started_at) FILTER (WHERE used.started_at < refund.cutoff_at) AS last_used_at,
       sum(used.minutes) FILTER (WHERE used.started_at >= refund.processed_at) AS minutes_after_payout,
       count(*) FILTER (WHERE used.started_at >= refund.processed_at) AS records_after_payout,
       min(used.started_at) FILTER (WHERE used.started_at >= refund.processed_at) AS first_used_after_payout
FROM refund_facts AS refund
JOIN usage AS used ON used.order_id = refund.order_id AND used.minutes > 0
WHERE refund.is_live
GROUP BY refund.refund_id;
