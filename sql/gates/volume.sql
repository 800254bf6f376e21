/* @step
appends = ["gate_results"]
reads = ["gate_runs", "run_inputs"]
params = ["as_of", "gate_sources", "gate_volume_max_factor", "gate_volume_min_nights", "gate_volume_trailing_nights", "run_id"]
*/
-- Volume: are tonight's visible rows of an export (run_inputs.rows_in) within
-- gates.volume_max_factor of their median over the earlier nights? The earlier nights are the
-- as_of values in the gates.volume_trailing_nights days before tonight's, each counted once
-- with its latest delivery of the export (reruns and replays do not count twice); later as_of
-- values are ignored. With fewer than gates.volume_min_nights of them there is no judgement.
-- `gate_runs` is warehouse.runs, or empty before the first run (jobs/stages/gates.py).
INSERT INTO gate_results BY NAME
WITH earlier AS (
    SELECT delivered.source, run.as_of, delivered.rows_in
    FROM gate_runs AS run, unnest(run.input_files) AS files(delivered)
    WHERE run.as_of BETWEEN getvariable('as_of') - getvariable('gate_volume_trailing_nights')
                        AND getvariable('as_of') - 1
    QUALIFY row_number() OVER (PARTITION BY delivered.source, run.as_of
                               ORDER BY run.started_at DESC, run.run_id DESC) = 1
), history AS (
    SELECT source, count(*) AS nights, median(rows_in::DECIMAL(18,1)) AS median_rows
    FROM earlier GROUP BY source
), judged AS (
    SELECT source, tonight.rows_in, coalesce(history.nights, 0) AS nights, history.median_rows,
           getvariable('gate_volume_max_factor') AS factor,
           tonight.rows_in IS NOT NULL AND coalesce(history.nights, 0) >= getvariable('gate_volume_min_nights')
               AS judged,
           tonight.rows_in <= history.median_rows * factor AS not_too_many,
           tonight.rows_in * factor >= history.median_rows AS not_too_few,
           'Volume of ' || source || ': ' AS subject,
           'the median ' || gate_number(history.median_rows) || ' of ' || gate_nights(nights) AS median_text
    FROM (SELECT unnest(getvariable('gate_sources')) AS source) AS sources
    LEFT JOIN run_inputs AS tonight USING (source)
    LEFT JOIN history USING (source)
)
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       'volume' AS gate,
       source,
       CASE WHEN judged THEN not_too_many AND not_too_few END AS passed,
       CASE WHEN rows_in IS NULL THEN 'no file read' ELSE gate_number(rows_in) || ' rows' END AS observed,
       CASE WHEN judged THEN gate_number(median_rows / factor) || ' to ' || gate_number(median_rows * factor)
                             || ' rows (' || median_text || ', factor ' || gate_number(factor) || ')'
            ELSE 'a median over at least ' || gate_nights(getvariable('gate_volume_min_nights')) || ' ('
                 || nights || ' found)' END AS expected,
       subject || CASE
           WHEN rows_in IS NULL THEN 'not judged: no file was read tonight (a replay).'
           WHEN NOT judged THEN 'not judged: ' || gate_nights(nights) || ' delivered it in the '
                || getvariable('gate_volume_trailing_nights') || ' days before ' || getvariable('as_of') || ', '
                || getvariable('gate_volume_min_nights') || ' needed (gates.volume_min_nights).'
           WHEN NOT not_too_many THEN gate_number(rows_in) || ' rows tonight, more than ' || gate_number(factor)
                || ' times ' || median_text || ' (gates.volume_max_factor). Check the export for duplicated or '
                || 'widened extracts before trusting tonight''s verdicts.'
           WHEN NOT not_too_few THEN gate_number(rows_in) || ' rows tonight, fewer than ' || median_text
                || ' divided by ' || gate_number(factor) || ' (gates.volume_max_factor). The export may be cut '
                || 'short: check that it is complete before trusting tonight''s verdicts.'
           ELSE gate_number(rows_in) || ' rows tonight, within a factor of ' || gate_number(factor) || ' of '
                || median_text || '.'
       END AS message
FROM judged
ORDER BY source;
