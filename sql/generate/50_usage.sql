/* @step
creates = ["usage_plan", "usage_minutes", "media_type", "usage"]
reads = ["order_money", "orders", "refund_plan"]
params = ["background_entities", "history_seconds", "history_start", "usage_target"]
*/
-- Usage: package usage per order (heavy-tailed: most orders a few rows, a few very many),
-- pay-as-you-go usage on each entity's own SDKAppID, and the PAYG minutes of usage_shift.
-- About 85% of the rows are package usage, 15% pay-as-you-go.
CREATE OR REPLACE TABLE usage_plan AS
WITH first_refund AS (
    SELECT order_no, requested_local, processed_local, status
    FROM refund_plan
    QUALIFY row_number() OVER (PARTITION BY order_no ORDER BY requested_local, refund_id) = 1
),
moded AS (
    SELECT money.order_no, money.sdkappid, money.purchased_local, refund.requested_local, refund.processed_local,
           CASE WHEN money.package_kind <> 'package' THEN NULL
                WHEN money.refund_kind = 'minutes_used' THEN 'before_request'
                WHEN money.refund_kind IN ('past_window', 'rejected') AND rnd(money.order_no, 'used') < 0.5 THEN 'before_request'
                WHEN money.refund_kind = 'usage_after' AND refund.status = 'paid' THEN 'after_payout'
                WHEN money.refund_kind IS NULL AND money.origin = 'background' AND rnd(money.order_no, 'unused') >= 0.08 THEN 'heavy'
           END AS mode,
           -- Pareto (alpha 0.8) weights in [1000, 1e8): the heavy tail
           CASE WHEN money.package_kind = 'package' THEN
               CAST(least(1e8 - 1, floor(1000 * pow(1 - rnd(money.order_no, 'volume'), -1.25))) AS HUGEINT) END AS weight
    FROM order_money AS money
    LEFT JOIN first_refund AS refund USING (order_no)
)
SELECT order_no, sdkappid, purchased_local, requested_local, processed_local, mode,
       CAST(CASE WHEN mode = 'heavy'
                 THEN weight * CAST(round(getvariable('usage_target') * 0.85) AS HUGEINT)
                      // sum(weight) FILTER (WHERE mode = 'heavy') OVER ()
                 ELSE 1 + pick(order_no, 'rows', 0, 5) END AS BIGINT) AS n_rows
FROM moded
WHERE mode IS NOT NULL;

CREATE OR REPLACE MACRO usage_minutes(key) AS
    CAST(round((30 + floor(-ln(1 - rnd(key, 'seconds')) * 1500)) / 60.0, 6) AS DECIMAL(18,6));
CREATE OR REPLACE MACRO media_type(key) AS
    CASE WHEN rnd(key, 'media') < 0.40 THEN 'audio' WHEN rnd(key, 'media') < 0.55 THEN 'video_sd'
         WHEN rnd(key, 'media') < 0.80 THEN 'video_hd' WHEN rnd(key, 'media') < 0.92 THEN 'video_fhd'
         WHEN rnd(key, 'media') < 0.97 THEN 'video_2k' ELSE 'video_4k' END;

-- Built in its export form (70_exports.sql adds the bad rows): the largest table, kept once.
CREATE OR REPLACE TABLE usage AS
WITH package_rows AS (
    SELECT printf('U%010d%07d', order_no, k) AS usage_id, order_no, sdkappid,
           CASE mode
               WHEN 'heavy' THEN purchased_local + to_seconds(CAST(rnd(order_no * 10000000 + k, 'start') * 30 * 86400 AS BIGINT))
               WHEN 'before_request' THEN purchased_local + to_seconds(CAST(
                   (0.01 + 0.98 * rnd(order_no * 10000000 + k, 'start')) * epoch(requested_local - purchased_local) AS BIGINT))
               ELSE processed_local + to_seconds(CAST(60 + rnd(order_no * 10000000 + k, 'start') * 20 * 86400 AS BIGINT))
           END AS started_local,
           order_no * 10000000 + k AS draw
    FROM usage_plan, unnest(range(n_rows)) AS numbered(k)
),
payg_rows AS (
    SELECT printf('P%017d', i) AS usage_id, NULL AS order_no,
           1600000000 + pick(i, 'payg_entity', 0, getvariable('background_entities') - 1) AS sdkappid,
           at_second(getvariable('history_start'), rnd(i, 'payg_start') * (getvariable('history_seconds') + 86400)) AS started_local,
           -i - 1 AS draw
    FROM range(CAST(round(getvariable('usage_target') * 0.15) AS BIGINT)) AS numbered(i)
),
shift_rows AS (
    SELECT printf('S%010d%07d', refund.order_no, k) AS usage_id, NULL AS order_no, refund.sdkappid,
           refund.purchased_local + to_seconds(CAST((k + 0.5) / o.payg_rows * epoch(refund.requested_local - refund.purchased_local) AS BIGINT))
               AS started_local,
           NULL AS draw
    FROM refund_plan AS refund JOIN orders AS o USING (order_no), unnest(range(o.payg_rows)) AS numbered(k)
)
SELECT usage_id, order_id(order_no) AS order_id, sdkappid, date_trunc('second', started_local) AS started_at,
       usage_minutes(draw) AS minutes, media_type(draw) AS media_type, 0 AS _tiebreak
FROM package_rows
UNION ALL
SELECT usage_id, NULL, sdkappid, date_trunc('second', started_local), usage_minutes(draw), media_type(draw), 0
FROM payg_rows
UNION ALL
SELECT usage_id, NULL, sdkappid, date_trunc('second', started_local),
       CAST(70 + round(40 * rnd(usage_id, 'shift_minutes'), 2) AS DECIMAL(18,6)), 'video_hd', 0
FROM shift_rows;
