/* @step
creates = ["bad_rows"]
appends = ["purchases", "usage", "refunds", "account_status"]
reads = ["bad_row_count", "bad_row_victims"]
params = ["file_rows", "unknown_order"]
*/
-- The bad rows of each export, copied from victims and broken one way each (file_rows:
-- the rows of each export before them, counted by jobs/tools/generate.py).
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
