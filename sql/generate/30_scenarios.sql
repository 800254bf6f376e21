/* @step
creates = ["scenarios", "scenario_instances", "script_orders", "script_status", "scripted_orders", "scripted_status"]
appends = ["orders"]
reads = ["catalog"]
params = ["as_of", "background_entities"]
*/
-- Scripted entities: small stories, each making one abuse signal (or rule) fire, repeated
-- `instances` times at a rate per background entity (at least `min_instances`, so every
-- signal fires at any scale). Days are relative to each instance's anchor day A =
-- as_of - pick(anchor_lo .. anchor_hi). Entity numbers follow the background entities.
CREATE OR REPLACE TABLE scenarios AS
WITH kinds(scenario, rate, min_instances, entities_per_instance, anchor_lo, anchor_hi) AS (VALUES
    ('serial_refunder',          0.0040,  1,  1,  2,  25),  -- 4 refunds 20 days apart
    ('refund_cycle',             0.0030,  1,  1,  2, 150),  -- refund, re-buy within 7 days, twice
    ('promo_refunds',            0.0030,  1,  1,  2, 120),  -- two promotion orders refunded
    ('refund_before_suspension', 0.0020,  1,  1,  2, 150),  -- refund paid, content suspension 3 days on
    ('linked_ring',              0.0015,  1,  3,  2, 150),  -- A -card a- B -card b- C; A and C refund 3 days apart
    ('linked_to_suspended',      0.0020,  1,  1,  3, 150),  -- refund on account 2 while account 1 is suspended
    ('usage_shift',              0.0020,  1,  1,  2, 150),  -- package untouched, >= 560 PAYG minutes on its app
    ('concurrent',               0.0030,  1,  1,  2, 300),  -- two packages of one entity refunded a day apart
    -- A leaked-coupon campaign: ~4x the daily live refunds, all on as_of - 2.
    ('refund_velocity',          0.0197, 25,  1,  2,   2),
    -- A reseller's card paying for 22 entities: it links nobody (> 20), so two of them
    -- refunding a day apart is no LINKED_ENTITIES.
    ('reseller',                 0.0001,  1, 22, 40,  40)
)
SELECT *,
       CAST(greatest(min_instances, round(rate * getvariable('background_entities'))) AS BIGINT) AS instances
FROM kinds;

CREATE OR REPLACE TABLE scenario_instances AS
WITH counted AS (
    SELECT scenario, instances, entities_per_instance, anchor_lo, anchor_hi,
           sum(instances * entities_per_instance) OVER (ORDER BY scenario) - instances * entities_per_instance AS first_entity
    FROM scenarios
)
SELECT scenario, i AS instance, scenario || ':' || i AS instance_key,
       getvariable('background_entities') + first_entity + i * entities_per_instance AS first_entity_no,
       entities_per_instance,
       getvariable('as_of') - CAST(pick(scenario || ':' || i, 'anchor', anchor_lo, anchor_hi) AS INTEGER) AS anchor
FROM counted, unnest(range(instances)) AS numbered(i);

-- One row per scripted order. entity_slot -1: every slot from 2 on, 7 days earlier per slot.
-- card: own | ring_a | ring_b | reseller. refund_day NULL: not refunded.
CREATE OR REPLACE TABLE script_orders AS
SELECT * FROM (VALUES
    ('serial_refunder',          0,  0, 0, 'call',       -60, 10, 'none',     'own',      -59,   11,  0),
    ('serial_refunder',          1,  0, 0, 'live',       -40, 10, 'none',     'own',      -39,   11,  0),
    ('serial_refunder',          2,  0, 0, 'conference', -20, 10, 'none',     'own',      -19,   11,  0),
    ('serial_refunder',          3,  0, 0, 'call',         0, 10, 'none',     'own',        1,   11,  0),
    ('refund_cycle',             0,  0, 0, 'live',       -12, 10, 'none',     'own',      -11,   10,  0),
    ('refund_cycle',             1,  0, 0, 'live',        -8, 10, 'none',     'own',       -6,   15,  0),
    ('refund_cycle',             2,  0, 0, 'live',        -1, 10, 'none',     'own',     NULL, NULL,  0),
    ('promo_refunds',            0,  0, 0, 'conference', -40, 10, 'discount', 'own',      -39,   10,  0),
    ('promo_refunds',            1,  0, 0, 'call',       -10, 10, 'coupon',   'own',       -8,   10,  0),
    ('refund_before_suspension', 0,  0, 0, 'call',        -3, 10, 'none',     'own',       -2,   10,  0),
    ('linked_ring',              0,  0, 0, 'call',        -3, 10, 'none',     'ring_a',    -2,   10,  0),
    ('linked_ring',              1,  1, 0, 'live',       -30, 10, 'none',     'ring_a',  NULL, NULL,  0),
    ('linked_ring',              2,  1, 0, 'live',       -20, 10, 'none',     'ring_b',  NULL, NULL,  0),
    ('linked_ring',              3,  2, 0, 'conference',  -1, 10, 'none',     'ring_b',     1,   10,  0),
    ('linked_to_suspended',      0,  0, 0, 'call',       -60, 10, 'none',     'own',     NULL, NULL,  0),
    ('linked_to_suspended',      1,  0, 1, 'live',        -3, 10, 'none',     'own',       -2,   10,  0),
    ('usage_shift',              0,  0, 0, 'call',        -4, 10, 'none',     'own',       -1,   10,  8),
    ('concurrent',               0,  0, 0, 'call',        -5, 10, 'none',     'own',       -4,   10,  0),
    ('concurrent',               1,  0, 0, 'conference',  -5, 11, 'none',     'own',       -3,   10,  0),
    ('refund_velocity',          0,  0, 0, 'call',        -1,  9, 'coupon',   'own',        0,   10,  0),
    ('reseller',                 0,  0, 0, 'call',        -2, 10, 'none',     'reseller',  -1,   10,  0),
    ('reseller',                 0,  1, 0, 'live',        -1, 10, 'none',     'reseller',   0,   12,  0),
    ('reseller',                 0, -1, 0, 'call',        -5, 10, 'none',     'reseller', NULL, NULL,  0)
) AS script(scenario, step, entity_slot, account_slot, product, day, hour, promo, card_kind,
            refund_day, refund_hour, payg_rows);

-- Status changes of scripted accounts.
CREATE OR REPLACE TABLE script_status AS
SELECT * FROM (VALUES
    ('refund_before_suspension', 0, 0,   1, 10, 'suspended', 'content_violation'),
    ('linked_to_suspended',      0, 0, -20, 10, 'suspended', 'illegal_activity')
) AS script(scenario, entity_slot, account_slot, day, hour, status, reason);

CREATE OR REPLACE TABLE scripted_orders AS
WITH expanded AS (
    SELECT instance.*, script.*, slot.entity_slot AS slot,
           instance.first_entity_no + slot.entity_slot AS entity_no,
           CAST(script.day - CASE WHEN script.entity_slot = -1 THEN 7 * slot.entity_slot ELSE 0 END AS INTEGER) AS purchase_day
    FROM scenario_instances AS instance
    JOIN script_orders AS script USING (scenario)
    JOIN (SELECT unnest(range(22)) AS entity_slot) AS slot
      ON slot.entity_slot = script.entity_slot
      OR (script.entity_slot = -1 AND slot.entity_slot >= 2 AND slot.entity_slot < instance.entities_per_instance)
)
SELECT entity_no * 32 + step AS order_no,
       entity_no,
       entity_no * 4 + account_slot AS account_no,
       1400000000 + (entity_no * 4 + account_slot) * 2 AS sdkappid,
       (SELECT min(item) FROM catalog WHERE catalog.product = expanded.product AND edition = 'standard') AS item,
       at_second(anchor + purchase_day, hour * 3600 + pick(instance_key || ':' || step || ':' || slot, 'minute', 0, 50) * 60)
           AS purchased_local,
       'CNY' AS currency,
       1.00 AS cny_per_unit,
       CASE WHEN promo = 'discount' THEN 0.20 ELSE 0 END AS discount_rate,
       promo = 'coupon' AS has_coupon,
       'cash' AS payment_split,
       CASE card_kind WHEN 'own' THEN card('own', entity_no)
                      ELSE card(card_kind, instance_key) END AS fingerprint,
       CASE WHEN refund_day IS NOT NULL THEN 'compliant' END AS refund_kind,
       CASE WHEN refund_day IS NOT NULL THEN
           at_second(anchor + refund_day, refund_hour * 3600 + pick(instance_key || ':' || step || ':' || slot, 'refund_minute', 0, 50) * 60)
       END AS scripted_request_local,
       payg_rows,
       scenario AS origin
FROM expanded;

INSERT INTO orders BY NAME SELECT * FROM scripted_orders;

CREATE OR REPLACE TABLE scripted_status AS
SELECT instance.first_entity_no + script.entity_slot AS entity_no,
       (instance.first_entity_no + script.entity_slot) * 4 + script.account_slot AS account_no,
       at_second(instance.anchor + script.day, script.hour * 3600) AS effective_local,
       script.status, script.reason
FROM scenario_instances AS instance
JOIN script_status AS script USING (scenario);
