-- Settings and pseudo-randomness for the synthetic night (jobs/generate.py, docs/generator.md).
-- Inputs (SET VARIABLE by the caller): seed, scale, as_of.
-- Every random draw is a hash of (seed, key, salt) mapped to [0, 1), never random(): the
-- output is the same for a seed whatever the thread count. hash() of several values
-- barely mixes the last ones into the high bits, so the combined hash is hashed again. All generated times are billing
-- time (Asia/Shanghai, UTC+8) TIMESTAMPs; the export step adds the offset.

CREATE OR REPLACE MACRO rnd(key, salt) AS
    CAST(hash(hash(getvariable('seed'), key, salt)) >> 11 AS DOUBLE) / 9007199254740992.0;
CREATE OR REPLACE MACRO pick(key, salt, lo, hi) AS
    CAST(lo + floor(rnd(key, salt) * (hi - lo + 1)) AS BIGINT);
CREATE OR REPLACE MACRO card(kind, key) AS
    'fp_' || substr(md5(concat_ws(':', getvariable('seed'), kind, key)), 1, 16);
CREATE OR REPLACE MACRO at_second(day, seconds) AS
    CAST(day AS TIMESTAMP) + to_seconds(CAST(seconds AS BIGINT));
-- Ids as the exports spell them.
CREATE OR REPLACE MACRO order_id(order_no) AS printf('8%011d', order_no);
CREATE OR REPLACE MACRO account_id(account_no) AS CAST(100000000000 + account_no AS VARCHAR);
CREATE OR REPLACE MACRO entity_id(entity_no) AS printf('ENT%07d', entity_no);
CREATE OR REPLACE MACRO cents(amount_cents) AS CAST(CAST(amount_cents AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2));

SET VARIABLE as_of_end = CAST(getvariable('as_of') AS TIMESTAMP) + INTERVAL 1 DAY;
-- Purchases span the 365 billing days ending on as_of and 2 days after it.
SET VARIABLE history_start = getvariable('as_of_end') - INTERVAL 365 DAY;
SET VARIABLE history_seconds = 367 * 86400;
-- The export was taken at this moment: refunds processed later are still pending in it.
SET VARIABLE export_at = getvariable('as_of_end') + INTERVAL 2 DAY;
-- Scale 1: 10,000 entities, 50,000 purchases, 20,000 refunds, 5,000,000 usage rows.
SET VARIABLE background_entities = CAST(greatest(20, round(9500 * getvariable('scale'))) AS BIGINT);
SET VARIABLE usage_target = CAST(round(5000000 * getvariable('scale')) AS BIGINT);
-- Share of background orders that are refunded.
SET VARIABLE refund_share = 0.385;
