/* @step
creates = ["bad_row_count", "purchases", "refunds", "account_status", "bad_row_victims"]
reads = ["order_money", "refund_plan", "status_changes"]
params = ["as_of_end"]
*/
-- The four exports (SPEC section 2) in billing time, plus a few bad rows in each: about
-- 0.1% of a file's rows, and one of each kind as long as that stays within 0.5%. Bad rows
-- never have dependent rows, so exactly they are quarantined. `_tiebreak` orders a
-- duplicate key after its original.
CREATE OR REPLACE MACRO bad_row_count(file_rows, kinds) AS
    CAST(greatest(floor(file_rows * 0.001), least(kinds, floor(file_rows * 0.005))) AS BIGINT);

CREATE OR REPLACE TABLE purchases AS
SELECT order_id(order_no) AS order_id, account_id(account_no) AS account_id, entity_id(entity_no) AS entity_id,
       sdkappid, product, package_kind, edition, gifted_minutes,
       purchased_local AS purchased_at, currency,
       cents(list_cents) AS list_price, cents(discount_cents) AS discount_amount, cents(coupon_cents) AS coupon_amount,
       cents(cash_cents) AS paid_cash_credit, cents(commission_cents) AS paid_commission_credit,
       cents(free_cents) AS paid_free_credit, fingerprint AS payment_fingerprint, 0 AS _tiebreak
FROM order_money;

CREATE OR REPLACE TABLE refunds AS
SELECT refund_id, order_id(order_no) AS order_id, date_trunc('second', requested_local) AS requested_at, status,
       CASE WHEN status <> 'pending' THEN date_trunc('second', processed_local) END AS processed_at,
       currency,
       cents(refund_cash) AS refund_cash_credit, cents(refund_commission) AS refund_commission_credit,
       cents(refund_free) AS refund_free_credit,
       cents(refund_cash + refund_commission + refund_free) AS refund_amount, 0 AS _tiebreak
FROM (
    SELECT *,
           CASE WHEN refund_kind = 'rejected' THEN 0
                WHEN refund_kind = 'under_refunded' THEN cash_cents - greatest(100, CAST(round(cash_cents * 0.1) AS BIGINT))
                WHEN refund_kind = 'path_mismatch' THEN cash_cents + free_cents
                WHEN refund_kind = 'coupon_refunded' THEN cash_cents + coupon_cents
                ELSE cash_cents END AS refund_cash,
           CASE WHEN refund_kind = 'rejected' THEN 0 ELSE commission_cents END AS refund_commission,
           CASE WHEN refund_kind IN ('rejected', 'path_mismatch') THEN 0 ELSE free_cents END AS refund_free
    FROM refund_plan
);


CREATE OR REPLACE TABLE account_status AS
SELECT account_id(account_no) AS account_id, status, reason, effective_local AS effective_at, 0 AS _tiebreak
FROM status_changes;

-- Victims: rows the bad rows copy, old enough to be seen by the run.
CREATE OR REPLACE TABLE bad_row_victims AS
SELECT 'purchases' AS source, row_number() OVER (ORDER BY order_id) - 1 AS position, order_id AS victim
FROM purchases WHERE purchased_at < getvariable('as_of_end') - INTERVAL 10 DAY
UNION ALL
SELECT 'refunds', row_number() OVER (ORDER BY refund_id) - 1, refund_id
FROM refunds WHERE requested_at < getvariable('as_of_end') - INTERVAL 10 DAY
UNION ALL
SELECT 'account_status', row_number() OVER (ORDER BY account_id, effective_at) - 1, account_id || '@' || effective_at
FROM account_status WHERE effective_at < getvariable('as_of_end') - INTERVAL 10 DAY;
ALTER TABLE bad_row_victims ADD COLUMN victims BIGINT;
UPDATE bad_row_victims SET victims = (SELECT count(*) FROM bad_row_victims AS v WHERE v.source = bad_row_victims.source);
