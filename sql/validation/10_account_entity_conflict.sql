/* @step
creates = ["quarantined_orders", "missing_order_check", "missing_order_message"]
appends = ["quarantine"]
reads = ["known_purchases", "recorded_purchases", "stored_purchases", "visible_purchases"]
params = ["as_of"]
*/
-- SPEC 2: "an account belongs to one entity; a purchase row giving an account_id another
-- entity_id than that account's earliest purchase is quarantined." The earliest purchase may
-- be stored by an earlier night; at the same instant a stored purchase comes first.
INSERT INTO quarantine
SELECT 'purchases', _line, 'entity_id', 'account_entity_conflict', entity_id,
       'account ' || account_id || ' belongs to entity ' || owner_entity_id
           || ' (its earliest purchase, '
           || coalesce('line ' || owner_line, 'order ' || owner_order_id || ' loaded by run ' || owner_run_id) || ')'
FROM (
    SELECT _line, account_id, entity_id,
           first_value(entity_id) OVER earliest AS owner_entity_id,
           first_value(_line) OVER earliest AS owner_line,
           first_value(order_id) OVER earliest AS owner_order_id,
           first_value(stored_run_id) OVER earliest AS owner_run_id
    FROM recorded_purchases
    WINDOW earliest AS (PARTITION BY account_id ORDER BY purchased_at, _line NULLS FIRST, order_id)
)
WHERE _line IS NOT NULL AND entity_id <> owner_entity_id;

-- Orders that did not load, with the first reason, for the rows that depend on them; and the
-- stored orders whose latest delivery, on an earlier night, was quarantined.
CREATE OR REPLACE TEMP VIEW quarantined_orders AS
SELECT visible.order_id,
       'purchases line ' || min(quarantine.line) || ': ' || arg_min(quarantine.message, quarantine.line) AS reason
FROM visible_purchases AS visible
JOIN quarantine ON quarantine.source = 'purchases' AND quarantine.line = visible._line
WHERE visible.order_id IS NOT NULL
  AND visible.order_id NOT IN (SELECT order_id FROM known_purchases)
GROUP BY visible.order_id
UNION ALL
SELECT order_id, 'its latest delivery, purchases line ' || _source_line || ' on ' || _valid_from || ', was quarantined'
FROM stored_purchases
WHERE _quarantined AND order_id NOT IN (SELECT order_id FROM visible_purchases WHERE order_id IS NOT NULL);

-- What a dependent row says when its order_id names no loaded order.
CREATE OR REPLACE TEMP MACRO missing_order_check(wanted_order_id) AS
    CASE WHEN wanted_order_id IN (SELECT order_id FROM quarantined_orders) THEN 'order_quarantined'
         ELSE 'unknown_order' END;
CREATE OR REPLACE TEMP MACRO missing_order_message(wanted_order_id) AS
    coalesce(
        (SELECT 'order ' || wanted_order_id || ' is quarantined (' || reason || ')'
         FROM quarantined_orders WHERE order_id = wanted_order_id),
        'order ' || wanted_order_id || ' is not among the purchases visible on ' || getvariable('as_of')
    );
