/* @step
creates = ["signal_precision"]
reads = ["case_dispositions", "signal_catalog"]
*/
-- signal_precision: for each signal, how reviewers judged the cases it was part of, by
-- each case's latest decision. precision = confirmed / (confirmed + false_positive).
CREATE OR REPLACE VIEW signal_precision AS
WITH latest_decision AS (
    SELECT * FROM case_dispositions
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY decided_at DESC, rowid DESC) = 1
),
judged_signals AS (
    SELECT unnest(signal_codes) AS signal_code, disposition FROM latest_decision
)
SELECT catalog.signal_code,
       count(*) FILTER (WHERE judged.disposition = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE judged.disposition = 'false_positive') AS false_positive,
       count(*) FILTER (WHERE judged.disposition = 'needs_info') AS needs_info,
       round(count(*) FILTER (WHERE judged.disposition = 'confirmed')
             / nullif(count(*) FILTER (WHERE judged.disposition IN ('confirmed', 'false_positive')), 0), 3)
           AS precision
FROM signal_catalog AS catalog
LEFT JOIN judged_signals AS judged USING (signal_code)
GROUP BY catalog.signal_code, catalog.position
ORDER BY catalog.position;
