/* @step
creates = ["background_orders", "orders"]
reads = ["catalog", "entities", "refund_kinds"]
params = ["as_of_end", "history_seconds", "history_start", "refund_share"]
*/
-- Background orders (order_no = entity_no * 32 + j), spread evenly over the entity's year
-- with a little jitter, each with the refund story it will have (refund_kinds).
CREATE OR REPLACE TABLE background_orders AS
WITH slots AS (
    SELECT entity.*, j, entity_no * 32 + j AS order_no,
           at_second(getvariable('history_start'),
                     getvariable('history_seconds')
                     * least(0.999999, greatest(0, (j + phase + 0.3 * (rnd(entity_no * 32 + j, 'jitter') - 0.5)) / n_orders)))
               AS purchased_local
    FROM entities AS entity, unnest(range(n_orders)) AS slot(j)
),
refunded AS (
    SELECT *,
           rnd(order_no, 'refund') < getvariable('refund_share') AS is_refunded,
           -- Old enough that the refund is judged and processed: candidates for the planted kinds.
           purchased_local BETWEEN getvariable('history_start') + INTERVAL 30 DAY
                               AND getvariable('as_of_end') - INTERVAL 30 DAY AS plantable
    FROM slots
),
ranked AS (
    SELECT *,
           CASE WHEN is_refunded AND plantable
                THEN row_number() OVER (PARTITION BY is_refunded AND plantable ORDER BY order_no) - 1 END AS plant_seq,
           rnd(order_no, 'kind') AS kind_draw
    FROM refunded
)
SELECT ranked.*,
       CASE WHEN is_refunded THEN coalesce(forced.kind, drawn.kind) END AS refund_kind
FROM ranked
JOIN refund_kinds AS drawn ON ranked.kind_draw >= drawn.lo AND ranked.kind_draw < drawn.hi
LEFT JOIN refund_kinds AS forced ON forced.forced = ranked.plant_seq;

-- Every order, background and scripted (30_scenarios.sql adds the scripted ones), with its
-- item, account, SDKAppID, card and money in cents.
CREATE OR REPLACE TABLE orders AS
WITH picked AS (
    SELECT o.*,
           o.entity_no * 4 + pick(o.order_no, 'account', 0, o.n_accounts - 1) AS account_no,
           pick(o.order_no, 'app', 0, 1) AS app_slot,
           rnd(o.order_no, 'item') AS item_draw,
           coalesce(o.refund_kind IN ('minutes_used', 'usage_after'), false) AS needs_minutes
    FROM background_orders AS o
),
itemized AS (
    SELECT picked.*, item.item
    FROM picked JOIN catalog AS item ON picked.item_draw >= item.lo AND picked.item_draw < item.hi
    WHERE NOT needs_minutes
    UNION ALL BY NAME
    SELECT picked.*, item.item
    FROM picked JOIN catalog AS item ON picked.item_draw >= item.pkg_lo AND picked.item_draw < item.pkg_hi
    WHERE needs_minutes
)
SELECT order_no, entity_no, account_no,
       1400000000 + account_no * 2 + app_slot AS sdkappid,
       item, purchased_local, currency, cny_per_unit,
       -- promotions: a first-subscription discount or a cash coupon on some orders
       CASE WHEN rnd(order_no, 'discount') < 0.08 THEN 0.10 WHEN rnd(order_no, 'discount') < 0.10 THEN 0.25 ELSE 0 END AS discount_rate,
       refund_kind IS NOT DISTINCT FROM 'coupon_refunded' OR rnd(order_no, 'coupon') < 0.05 AS has_coupon,
       -- payment split: some commission credits (partners), some free credits
       CASE WHEN refund_kind = 'under_refunded' THEN 'cash'
            WHEN refund_kind = 'path_mismatch' OR rnd(order_no, 'split') < 0.06 THEN 'cash+free'
            WHEN rnd(order_no, 'split') < 0.14 THEN 'cash+commission'
            ELSE 'cash' END AS payment_split,
       CASE WHEN rnd(order_no, 'no_card') < 0.10 THEN NULL
            WHEN other_card IS NOT NULL AND rnd(order_no, 'which_card') < 0.5 THEN other_card
            ELSE own_card END AS fingerprint,
       refund_kind,
       CAST(NULL AS TIMESTAMP) AS scripted_request_local,
       0 AS payg_rows,
       'background' AS origin
FROM itemized;
