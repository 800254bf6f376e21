/* @invariant
code = "I03"
name = "no_row_both_loaded_and_quarantined"
reads = ["delivered_account_status", "delivered_purchases", "delivered_refunds", "delivered_usage", "quarantine"]
*/
-- No row is both loaded and quarantined: no line of a loaded table (purchases, usage,
-- refunds, account_status) has an entry in the quarantine, so no quarantined refund, order,
-- usage record or status change reaches the rules or the money.
WITH loaded AS (
    SELECT 'purchases' AS source, _line AS line, order_id AS row_key FROM delivered_purchases
    UNION ALL SELECT 'usage', _line, usage_id FROM delivered_usage
    UNION ALL SELECT 'refunds', _line, refund_id FROM delivered_refunds
    UNION ALL SELECT 'account_status', _line, account_id || ' @ ' || CAST(effective_at AS VARCHAR) FROM delivered_account_status
),
both_ways AS (
    SELECT DISTINCT loaded.source, loaded.line, loaded.row_key
    FROM loaded
    JOIN quarantine USING (source, line)
)
SELECT count(*) = 0 AS passed,
       '0 rows' AS expected,
       count(*) || ' rows' AS actual,
       coalesce(string_agg(source || ' line ' || line || ' (' || row_key || ')', ', ' ORDER BY source, line),
                'no loaded row is in the quarantine') AS detail
FROM both_ways;
