-- The four exports (SPEC section 2) in billing time, plus a few bad rows in each: about
-- 0.1% of a file's rows, and one of each kind as long as that stays within 0.5%. Bad rows
-- never have dependent rows, so exactly they are quarantined. `_tiebreak` orders a
-- duplicate key after its original.
CREATE OR REPLACE MACRO bad_row_count(file_rows, kinds) AS
    CAST(greatest(floor(file_rows * 0.001), least(kinds, floor(file_rows * 0.005))) AS BIGINT);
-- An order id no purchase has.
SET VARIABLE unknown_order = '899999999999';

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
SET VARIABLE file_rows = (SELECT map(['purchases', 'usage', 'refunds', 'account_status'],
    [(SELECT count(*) FROM purchases), (SELECT count(*) FROM usage),
     (SELECT count(*) FROM refunds), (SELECT count(*) FROM account_status)]));

-- The bad rows of one file: number i, its kind (the kinds in turn) and a victim to copy.
CREATE OR REPLACE MACRO bad_rows(source, kinds, file_rows, victim_source) AS TABLE
    SELECT i, kinds[1 + i % len(kinds)] AS kind, victim.victim
    FROM range(bad_row_count(file_rows, len(kinds))) AS numbered(i)
    JOIN bad_row_victims AS victim
      ON victim.source = victim_source
     AND victim.position = pick(source || ':' || i, 'victim', 0, victim.victims - 1);

INSERT INTO purchases
SELECT CASE WHEN bad.kind = 'duplicate_key' THEN p.order_id ELSE printf('9%011d', bad.i) END,
       p.account_id,
       CASE WHEN bad.kind = 'account_entity_conflict' THEN printf('ENT9%06d', bad.i) ELSE p.entity_id END,
       p.sdkappid,
       CASE WHEN bad.kind = 'bad_product' THEN 'video' ELSE p.product END,
       p.package_kind, p.edition, p.gifted_minutes,
       p.purchased_at + CASE WHEN bad.kind = 'account_entity_conflict' THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END,
       p.currency, p.list_price, p.discount_amount, p.coupon_amount,
       p.paid_cash_credit + CASE WHEN bad.kind = 'broken_amounts' THEN 5 ELSE 0 END,
       p.paid_commission_credit, p.paid_free_credit, p.payment_fingerprint, 1
FROM bad_rows('purchases', ['bad_product', 'duplicate_key', 'account_entity_conflict', 'broken_amounts'], getvariable('file_rows')['purchases'], 'purchases') AS bad
JOIN purchases AS p ON p.order_id = bad.victim AND p._tiebreak = 0;

-- Usage bad rows hang on a purchase victim: its SDKAppID, an hour after its purchase.
INSERT INTO usage
SELECT printf('X%017d', bad.i),
       CASE WHEN bad.kind = 'unknown_order' THEN getvariable('unknown_order') ELSE p.order_id END,
       p.sdkappid,
       CASE WHEN bad.kind = 'before_purchase_day' THEN date_trunc('day', p.purchased_at) - INTERVAL 1 HOUR
            ELSE p.purchased_at + INTERVAL 1 HOUR END,
       CASE WHEN bad.kind = 'negative_minutes' THEN -12.5 ELSE 3.25 END,
       CASE WHEN bad.kind = 'bad_media_type' THEN 'video_8k' ELSE 'audio' END,
       1
FROM bad_rows('usage', ['negative_minutes', 'unknown_order', 'bad_media_type', 'before_purchase_day'], getvariable('file_rows')['usage'], 'purchases') AS bad
JOIN purchases AS p ON p.order_id = bad.victim AND p._tiebreak = 0;

INSERT INTO refunds
SELECT CASE WHEN bad.kind = 'duplicate_key' THEN r.refund_id ELSE printf('RFX%09d', bad.i) END,
       CASE WHEN bad.kind = 'unknown_order' THEN getvariable('unknown_order') ELSE r.order_id END,
       r.requested_at,
       CASE WHEN bad.kind = 'bad_status' THEN 'approved'
            WHEN bad.kind = 'processed_before_requested' THEN 'paid' ELSE r.status END,
       CASE WHEN bad.kind = 'processed_before_requested' THEN r.requested_at - INTERVAL 1 HOUR
            WHEN bad.kind = 'bad_status' THEN r.requested_at + INTERVAL 1 HOUR ELSE r.processed_at END,
       r.currency, r.refund_cash_credit, r.refund_commission_credit, r.refund_free_credit, r.refund_amount, 1
FROM bad_rows('refunds', ['unknown_order', 'duplicate_key', 'processed_before_requested', 'bad_status'], getvariable('file_rows')['refunds'], 'refunds') AS bad
JOIN refunds AS r ON r.refund_id = bad.victim AND r._tiebreak = 0;

INSERT INTO account_status
SELECT s.account_id,
       CASE WHEN bad.kind = 'bad_status' THEN 'frozen' ELSE s.status END,
       s.reason,
       s.effective_at + CASE WHEN bad.kind = 'bad_status' THEN INTERVAL 1 MINUTE ELSE INTERVAL 0 MINUTE END, 1
FROM bad_rows('account_status', ['bad_status', 'duplicate_key'], getvariable('file_rows')['account_status'], 'account_status') AS bad
JOIN account_status AS s ON s.account_id || '@' || s.effective_at = bad.victim AND s._tiebreak = 0;
