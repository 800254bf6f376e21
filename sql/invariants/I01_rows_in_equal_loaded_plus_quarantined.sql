/* @invariant
code = "I01"
name = "rows_in_equal_loaded_plus_quarantined"
reads = ["delivered_account_status", "delivered_purchases", "delivered_refunds", "delivered_usage", "quarantine", "run_inputs"]
*/
-- Every input row the run can see ends up either loaded or quarantined, never lost and never
-- both (SPEC 2, "rows in = rows loaded + rows quarantined"): for each export, rows_in equals
-- the rows of its loaded table plus its distinct quarantined lines, counted again now, and
-- those recounts equal the rows_loaded and rows_quarantined the run reports. (The loaded
-- table is tonight's delivery; a replay reads no file and passes with nothing to count.)
WITH sources AS (
    SELECT source FROM run_inputs
    UNION
    SELECT source FROM quarantine
),
counted AS (
    SELECT source,
           inputs.rows_in,
           inputs.rows_loaded,
           inputs.rows_quarantined,
           CASE source WHEN 'purchases' THEN (SELECT count(*) FROM delivered_purchases)
                       WHEN 'usage' THEN (SELECT count(*) FROM delivered_usage)
                       WHEN 'refunds' THEN (SELECT count(*) FROM delivered_refunds)
                       WHEN 'account_status' THEN (SELECT count(*) FROM delivered_account_status) END AS loaded,
           (SELECT count(DISTINCT line) FROM quarantine WHERE quarantine.source = sources.source) AS quarantined
    FROM sources
    LEFT JOIN run_inputs AS inputs USING (source)
),
judged AS (
    SELECT *,
           rows_in IS NOT NULL AND loaded IS NOT NULL
           AND rows_in = loaded + quarantined
           AND rows_loaded = loaded
           AND rows_quarantined = quarantined AS ok
    FROM counted
)
SELECT coalesce(bool_and(ok), true) AS passed,
       string_agg(source || ' ' || coalesce(CAST(rows_in AS VARCHAR), 'no input'), ', ' ORDER BY source)
           AS expected,
       string_agg(source || ' ' || coalesce(CAST(loaded AS VARCHAR), '?') || ' + ' || quarantined,
                  ', ' ORDER BY source) AS actual,
       coalesce(string_agg(source || ': rows_in ' || coalesce(CAST(rows_in AS VARCHAR), 'missing')
                           || ', loaded ' || coalesce(CAST(loaded AS VARCHAR), 'no table')
                           || ' (reported ' || coalesce(CAST(rows_loaded AS VARCHAR), 'nothing') || ')'
                           || ', quarantined ' || quarantined
                           || ' (reported ' || coalesce(CAST(rows_quarantined AS VARCHAR), 'nothing') || ')',
                           '; ' ORDER BY source) FILTER (WHERE NOT ok),
                'every row of ' || count(*) || ' exports is loaded or quarantined') AS detail
FROM judged;
