/* @step
appends = ["gate_results"]
reads = ["account_status", "purchases", "refunds", "usage"]
params = ["as_of", "as_of_end", "gate_freshness_max_age_hours", "run_id"]
*/
-- Freshness: is the newest record the night sees (tonight's delivery merged over the stored
-- records, visible by the end of as_of) at most gates.freshness_max_age_hours.<export> older than
-- the end of as_of? An export with no record at all is stale. A limit of NULL: not checked.
INSERT INTO gate_results BY NAME
WITH newest AS (
    SELECT 'purchases' AS source, 'purchased_at' AS time_column, max(purchased_at) AS newest_at FROM purchases
    UNION ALL SELECT 'usage', 'started_at', max(started_at) FROM usage
    UNION ALL SELECT 'refunds', 'requested_at', max(requested_at) FROM refunds
    UNION ALL SELECT 'account_status', 'effective_at', max(effective_at) FROM account_status
), judged AS (
    SELECT source, time_column, newest_at,
           getvariable('gate_freshness_max_age_hours')[source] AS max_hours,
           gate_age(epoch(getvariable('as_of_end') - newest_at)) AS age,
           newest_at >= getvariable('as_of_end') - to_hours(max_hours) AS fresh,
           'Freshness of ' || source || ': ' AS subject,
           'gates.freshness_max_age_hours.' || source AS setting
    FROM newest
)
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       'freshness' AS gate,
       source,
       CASE WHEN max_hours IS NOT NULL THEN coalesce(fresh, false) END AS passed,
       CASE WHEN newest_at IS NULL THEN 'no record'
            ELSE time_column || ' ' || newest_at || ' (' || age || ' old)' END AS observed,
       CASE WHEN max_hours IS NULL THEN 'not checked'
            ELSE 'at most ' || max_hours || 'h old (' || time_column || ' at or after '
                 || (getvariable('as_of_end') - to_hours(max_hours)) || ')' END AS expected,
       subject || CASE
           WHEN max_hours IS NULL THEN 'not checked (' || setting || ' is false).'
           WHEN newest_at IS NULL THEN 'no record at all up to the end of ' || getvariable('as_of')
                || ', where a record at most ' || max_hours || 'h old is expected (' || setting
                || '). Check that the export is the whole night''s file.'
           WHEN fresh THEN 'the newest record (' || time_column || ' ' || newest_at || ') is ' || age
                || ' before the end of ' || getvariable('as_of') || ', within the ' || max_hours || 'h allowed.'
           ELSE 'the newest record (' || time_column || ' ' || newest_at || ') is ' || age
                || ' before the end of ' || getvariable('as_of') || ', over the ' || max_hours || 'h allowed ('
                || setting || '). The export may be stale or cut short: check its extraction time before '
                || 'trusting tonight''s verdicts.'
       END AS message
FROM judged
ORDER BY source;
