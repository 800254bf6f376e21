-- The orders a row of tonight's exports may name: tonight's purchases that pass so far, and
-- the purchases stored by earlier nights that tonight's export does not replace (a night's
-- folder may be a delta: a refund tonight may be of an order bought and loaded last month).
-- A stored order has no line tonight; stored_run_id says which run delivered it.
CREATE OR REPLACE TEMP VIEW known_purchases AS
SELECT order_id, account_id, entity_id, purchased_at, currency, _line, NULL::VARCHAR AS stored_run_id
FROM passing_purchases
UNION ALL
SELECT stored.order_id, stored.account_id, stored.entity_id, stored.purchased_at, stored.currency,
       NULL, stored._run_id
FROM stored_purchases AS stored
WHERE stored.order_id NOT IN (SELECT order_id FROM passing_purchases WHERE order_id IS NOT NULL);
