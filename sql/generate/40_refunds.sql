/* @step
creates = ["order_money", "refund_plan"]
reads = ["catalog", "orders"]
params = ["export_at"]
*/
-- Money of every order, in cents of its currency.
-- Row rule: list - discount - coupon = cash + commission + free (the refundable amount).
CREATE OR REPLACE TABLE order_money AS
WITH priced AS (
    SELECT o.*, item.product, item.package_kind, item.edition, item.gifted_minutes,
           CAST(CASE WHEN o.currency = 'CNY' THEN item.price_cny_cents
                     ELSE round(item.price_cny_cents / o.cny_per_unit / 100) * 100 - 1 END AS BIGINT) AS list_cents
    FROM orders AS o JOIN catalog AS item USING (item)
),
promoted AS (
    SELECT *, CAST(round(list_cents * discount_rate) AS BIGINT) AS discount_cents
    FROM priced
),
couponed AS (
    SELECT *,
           CASE WHEN NOT has_coupon THEN 0
                WHEN origin <> 'background' THEN CAST(round((list_cents - discount_cents) * 0.30) AS BIGINT)
                ELSE CAST(round((list_cents - discount_cents) * [0.05, 0.10, 0.20][pick(order_no, 'coupon_size', 1, 3)]) AS BIGINT)
           END AS coupon_cents
    FROM promoted
),
split AS (
    SELECT *, list_cents - discount_cents - coupon_cents AS net_cents,
           CASE payment_split
               WHEN 'cash+free' THEN CAST(round((list_cents - discount_cents - coupon_cents) * (0.1 + 0.4 * rnd(order_no, 'free'))) AS BIGINT)
               ELSE 0 END AS free_cents,
           CASE payment_split
               WHEN 'cash+commission' THEN CAST(round((list_cents - discount_cents - coupon_cents) * (0.2 + 0.8 * rnd(order_no, 'commission'))) AS BIGINT)
               ELSE 0 END AS commission_cents
    FROM couponed
)
SELECT *, net_cents - free_cents - commission_cents AS cash_cents
FROM split;

-- One refund per refunded order (a second one for `duplicate`), with its times and status.
CREATE OR REPLACE TABLE refund_plan AS
WITH timed AS (
    SELECT order_no, entity_no, account_no, sdkappid, product, package_kind, purchased_local, currency,
           refund_kind, origin, coupon_cents, cash_cents, commission_cents, free_cents,
           CASE WHEN scripted_request_local IS NOT NULL THEN scripted_request_local
                -- day 1 of the window: at least 10 minutes after the purchase
                WHEN request_day = 0 THEN purchased_local + to_seconds(CAST(600 + rnd(order_no, 'request_second')
                     * greatest(0, epoch(CAST(purchased_local AS DATE) + INTERVAL 1 DAY - purchased_local) - 601) AS BIGINT))
                ELSE at_second(CAST(purchased_local AS DATE) + CAST(request_day AS INTEGER), pick(order_no, 'request_second', 0, 86399))
           END AS requested_local
    FROM (
        SELECT *,
               CASE refund_kind
                   WHEN 'past_window' THEN pick(order_no, 'request_day', 5, 45)
                   WHEN 'rejected' THEN pick(order_no, 'request_day', 2, 22)
                   ELSE CAST(floor(pow(rnd(order_no, 'request_day'), 1.6) * 5) AS BIGINT) END AS request_day
        FROM order_money
        WHERE refund_kind IS NOT NULL
    )
),
copies AS (
    SELECT timed.*, copy,
           requested_local + to_seconds(copy * pick(order_no, 'resubmit', 7200, 72000)) AS copy_requested_local,
           CASE WHEN origin = 'refund_velocity' THEN to_seconds(pick(order_no, 'processing', 129600, 259200))  -- a surge: 1.5-3 days
                WHEN origin <> 'background' THEN INTERVAL 4 HOUR
                ELSE to_seconds(pick(order_no, 'processing', 7200, 259200)) END AS processing
    FROM timed, unnest(CASE WHEN refund_kind = 'duplicate' THEN [0, 1] ELSE [0] END) AS copies(copy)
),
processed AS (
    SELECT * EXCLUDE (requested_local, copy_requested_local), copy_requested_local AS requested_local,
           CASE WHEN refund_kind IN ('compliant', 'past_window', 'minutes_used', 'duplicate')
                     AND origin = 'background' AND rnd(order_no, 'stuck') < 0.01 THEN NULL  -- stuck in review
                ELSE copy_requested_local + processing END AS processed_local
    FROM copies
)
SELECT printf('RF%010d%d', order_no, copy) AS refund_id, *,
       CASE WHEN processed_local IS NULL OR processed_local > getvariable('export_at') THEN 'pending'
            WHEN refund_kind IN ('rejected', 'rejected_payout') THEN 'rejected'
            ELSE 'paid' END AS status
FROM processed;
