/* @step
creates = ["rnd", "pick", "card", "at_second", "order_id", "account_id", "entity_id", "cents"]
params = ["seed"]
*/
-- Settings and pseudo-randomness for the synthetic night (jobs/tools/generate.py, docs/generator.md).
-- Parameters (jobs/tools/generate.py): seed, and what follows from scale and as_of.
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
