/* @step
creates = ["quarantined_keys_purchases", "quarantined_keys_usage", "quarantined_keys_refunds", "quarantined_keys_account_status"]
appends = ["quarantined_keys_purchases", "quarantined_keys_usage", "quarantined_keys_refunds", "quarantined_keys_account_status"]
reads = ["quarantine", "visible_purchases", "passing_purchases", "visible_usage", "passing_usage", "visible_refunds", "passing_refunds", "visible_account_status", "passing_account_status"]
*/
-- The records whose delivery tonight is quarantined: the keys of visible rows in the quarantine
-- that no row loads tonight (of duplicates, the first row may load), with the first such line.
-- A record whose latest delivery is quarantined is not judged on its stored version
-- (jobs/stages/history.py). A row whose key did not parse names no record.
--
-- Each export's keys are stored first, then those a passing row still loads are deleted (issue
-- #12): stored, the few quarantined keys are counted exactly, so DuckDB builds the join's hash
-- table on them. As one statement (the keys a CTE, estimated at a fifth of the visible rows)
-- DuckDB built it on the passing rows instead, a RIGHT_SEMI hash table of every usage_id that
-- did not spill: out of memory at scale 50 under the 1 GiB limit (docs/performance.md).
CREATE OR REPLACE TEMP TABLE quarantined_keys_purchases AS
SELECT order_id, min(_line) AS _line FROM visible_purchases
WHERE order_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'purchases')
GROUP BY order_id;

DELETE FROM quarantined_keys_purchases
WHERE order_id IN (SELECT order_id FROM passing_purchases
                   WHERE order_id IN (SELECT order_id FROM quarantined_keys_purchases));

CREATE OR REPLACE TEMP TABLE quarantined_keys_usage AS
SELECT usage_id, min(_line) AS _line FROM visible_usage
WHERE usage_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'usage')
GROUP BY usage_id;

DELETE FROM quarantined_keys_usage
WHERE usage_id IN (SELECT usage_id FROM passing_usage
                   WHERE usage_id IN (SELECT usage_id FROM quarantined_keys_usage));

CREATE OR REPLACE TEMP TABLE quarantined_keys_refunds AS
SELECT refund_id, min(_line) AS _line FROM visible_refunds
WHERE refund_id IS NOT NULL AND _line IN (SELECT line FROM quarantine WHERE source = 'refunds')
GROUP BY refund_id;

DELETE FROM quarantined_keys_refunds
WHERE refund_id IN (SELECT refund_id FROM passing_refunds
                    WHERE refund_id IN (SELECT refund_id FROM quarantined_keys_refunds));

CREATE OR REPLACE TEMP TABLE quarantined_keys_account_status AS
SELECT account_id, effective_at, min(_line) AS _line FROM visible_account_status
WHERE account_id IS NOT NULL AND effective_at IS NOT NULL
  AND _line IN (SELECT line FROM quarantine WHERE source = 'account_status')
GROUP BY account_id, effective_at;

DELETE FROM quarantined_keys_account_status AS quarantined
WHERE EXISTS (SELECT 1 FROM passing_account_status AS passing
              WHERE passing.account_id = quarantined.account_id AND passing.effective_at = quarantined.effective_at);
