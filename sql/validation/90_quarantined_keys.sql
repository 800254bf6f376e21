/* @step
creates = ["quarantined_keys_purchases", "quarantined_keys_usage", "quarantined_keys_refunds", "quarantined_keys_account_status"]
reads = ["quarantine", "visible_purchases", "passing_purchases", "visible_usage", "passing_usage", "visible_refunds", "passing_refunds", "visible_account_status", "passing_account_status"]
*/
-- The records whose delivery tonight is quarantined: the keys of visible rows in the quarantine
-- that no row loads tonight (of duplicates, the first row may load), with the first such line.
-- A record whose latest delivery is quarantined is not judged on its stored version
-- (jobs/stages/history.py). A row whose key did not parse names no record.
CREATE OR REPLACE TEMP TABLE quarantined_keys_purchases AS
WITH quarantined AS (
    SELECT order_id, min(_line) AS _line FROM visible_purchases
    WHERE order_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'purchases')
    GROUP BY order_id
)
SELECT * FROM quarantined
WHERE order_id NOT IN (SELECT order_id FROM passing_purchases WHERE order_id IN (SELECT order_id FROM quarantined));

CREATE OR REPLACE TEMP TABLE quarantined_keys_usage AS
WITH quarantined AS (
    SELECT usage_id, min(_line) AS _line FROM visible_usage
    WHERE usage_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'usage')
    GROUP BY usage_id
)
SELECT * FROM quarantined
WHERE usage_id NOT IN (SELECT usage_id FROM passing_usage WHERE usage_id IN (SELECT usage_id FROM quarantined));

CREATE OR REPLACE TEMP TABLE quarantined_keys_refunds AS
WITH quarantined AS (
    SELECT refund_id, min(_line) AS _line FROM visible_refunds
    WHERE refund_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'refunds')
    GROUP BY refund_id
)
SELECT * FROM quarantined
WHERE refund_id NOT IN (SELECT refund_id FROM passing_refunds WHERE refund_id IN (SELECT refund_id FROM quarantined));

CREATE OR REPLACE TEMP TABLE quarantined_keys_account_status AS
WITH quarantined AS (
    SELECT account_id, effective_at, min(_line) AS _line FROM visible_account_status
    WHERE account_id IS NOT NULL AND effective_at IS NOT NULL
      AND _line IN (SELECT line FROM quarantine WHERE source = 'account_status')
    GROUP BY account_id, effective_at
)
SELECT * FROM quarantined
WHERE NOT EXISTS (SELECT 1 FROM passing_account_status AS passing
                  WHERE passing.account_id = quarantined.account_id AND passing.effective_at = quarantined.effective_at);
