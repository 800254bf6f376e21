/* @step
creates = ["known_purchases", "recorded_purchases"]
reads = ["passing_purchases", "stored_purchases", "visible_purchases"]
*/
-- The orders a row of tonight's exports may name: tonight's purchases that pass so far, and
-- the purchases stored by earlier nights that tonight's export does not replace (a night's
-- folder may be a delta: a refund tonight may be of an order bought and loaded last month).
-- A stored order has no line tonight; stored_run_id says which run delivered it.
-- A stored order whose latest delivery is quarantined (tonight's row, or an earlier night's:
-- `_quarantined`) is withheld: not known, so its dependants are quarantined with that reason
-- (docs/operations.md). `recorded_purchases` keeps it, for an account's owner.
CREATE OR REPLACE TEMP VIEW recorded_purchases AS
SELECT order_id, account_id, entity_id, purchased_at, currency, _line, NULL::VARCHAR AS stored_run_id,
       false AS withheld
FROM passing_purchases
UNION ALL
SELECT stored.order_id, stored.account_id, stored.entity_id, stored.purchased_at, stored.currency,
       NULL, stored._run_id,
       stored._quarantined OR stored.order_id IN (SELECT order_id FROM visible_purchases WHERE order_id IS NOT NULL)
FROM stored_purchases AS stored
WHERE stored.order_id NOT IN (SELECT order_id FROM passing_purchases WHERE order_id IS NOT NULL);

CREATE OR REPLACE TEMP VIEW known_purchases AS
SELECT * EXCLUDE (withheld) FROM recorded_purchases WHERE NOT withheld;
