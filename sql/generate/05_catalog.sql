/* @step
creates = ["catalog", "currencies", "refund_kinds"]
*/
-- What can be bought, in what currency, and the kinds of refund the background orders get.

-- Packages and feature packages: list price in CNY cents, gifted minutes, and how often
-- each is bought (weight). `lo`/`hi` cut [0, 1) by weight over all items, `pkg_lo`/`pkg_hi`
-- over the minute packages only (orders whose story needs package usage).
CREATE OR REPLACE TABLE catalog AS
WITH items(item, product, package_kind, edition, gifted_minutes, price_cny_cents, weight) AS (VALUES
    (0,  'call',       'package',         'starter',               10000,   9900, 14),
    (1,  'call',       'package',         'standard',              50000,  39900, 12),
    (2,  'call',       'package',         'pro',                  200000, 129900,  4),
    (3,  'conference', 'package',         'starter',               20000,  19900,  8),
    (4,  'conference', 'package',         'standard',              80000,  59900,  8),
    (5,  'conference', 'package',         'pro',                  300000, 199900,  3),
    (6,  'live',       'package',         'standard',              30000,  89900,  9),
    (7,  'live',       'package',         'pro',                  150000, 299900,  4),
    (8,  'rtc_engine', 'package',         'standard',              60000,  69900, 10),
    (9,  'rtc_engine', 'package',         'enterprise',           500000, 499900,  2),
    (10, 'rtc_engine', 'feature_package', 'ai_noise_suppression',      0,  19900,  8),
    (11, 'rtc_engine', 'feature_package', 'beauty_effects',            0,  29900,  6),
    (12, 'call',       'feature_package', 'cloud_recording',           0,   9900,  6),
    (13, 'live',       'feature_package', 'relay_to_cdn',              0,  49900,  6)
)
SELECT *,
       (sum(weight) OVER (ORDER BY item) - weight) / sum(weight) OVER () AS lo,
       sum(weight) OVER (ORDER BY item) / sum(weight) OVER () AS hi,
       CASE WHEN package_kind = 'package' THEN
           (sum(weight) FILTER (WHERE package_kind = 'package') OVER (ORDER BY item) - weight)
           / sum(weight) FILTER (WHERE package_kind = 'package') OVER () END AS pkg_lo,
       CASE WHEN package_kind = 'package' THEN
           sum(weight) FILTER (WHERE package_kind = 'package') OVER (ORDER BY item)
           / sum(weight) FILTER (WHERE package_kind = 'package') OVER () END AS pkg_hi
FROM items;

-- An entity pays in one currency; CNY per unit converts the CNY price list.
CREATE OR REPLACE TABLE currencies AS
WITH rates(currency, cny_per_unit, weight) AS (VALUES
    ('CNY', 1.00, 88), ('USD', 7.20, 8), ('HKD', 0.92, 2), ('SGD', 5.35, 2)
)
SELECT *,
       (sum(weight) OVER (ORDER BY currency) - weight) / sum(weight) OVER () AS lo,
       sum(weight) OVER (ORDER BY currency) / sum(weight) OVER () AS hi
FROM rates;

-- The refund stories of background orders, as a share of their refunds (docs/generator.md).
-- `forced` plants one of each on the first eligible refunds, so that every kind exists at
-- any scale. Shares are exact decimals summing to 1, so [lo, hi) cut [0, 1).
CREATE OR REPLACE TABLE refund_kinds AS
WITH kinds(kind, share, forced) AS (VALUES
    ('compliant',         0.785, NULL),
    ('rejected',          0.060, NULL),
    ('past_window',       0.040, 0),
    ('minutes_used',      0.040, 1),
    ('path_mismatch',     0.015, 2),
    ('under_refunded',    0.015, 3),
    ('account_suspended', 0.010, 4),
    ('coupon_refunded',   0.010, 5),
    ('duplicate',         0.010, 6),
    ('usage_after',       0.010, 7),
    ('rejected_payout',   0.005, 8)
)
SELECT *,
       sum(share) OVER (ORDER BY share DESC, kind) - share AS lo,
       sum(share) OVER (ORDER BY share DESC, kind) AS hi
FROM kinds;
