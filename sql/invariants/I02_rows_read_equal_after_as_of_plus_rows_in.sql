/* @invariant
code = "I02"
name = "rows_read_equal_after_as_of_plus_rows_in"
reads = ["run_inputs"]
params = ["run_mode"]
*/
-- Every row read from a file is either set aside as not yet known on as_of (after the end of
-- as_of, billing time: SPEC 3, "Later records are ignored, not errors") or taken in by the run:
-- for each export, rows_read = rows_after_as_of + rows_in.
WITH judged AS (
    SELECT *, coalesce(rows_read = rows_after_as_of + rows_in, false) AS ok
    FROM run_inputs
)
SELECT coalesce(bool_and(ok), getvariable('run_mode') = 'replay') AS passed,  -- a replay reads no file
       string_agg(source || ' ' || rows_read, ', ' ORDER BY source) AS expected,
       string_agg(source || ' ' || rows_after_as_of || ' + ' || rows_in, ', ' ORDER BY source) AS actual,
       CASE WHEN count(*) = 0 THEN 'no input files recorded (' || getvariable('run_mode') || ')'
            ELSE coalesce(string_agg(source || ': read ' || rows_read || ' <> after as_of ' || rows_after_as_of
                                     || ' + in ' || rows_in, '; ' ORDER BY source) FILTER (WHERE NOT ok),
                          'every row read of ' || count(*) || ' files is accounted for') END AS detail
FROM judged;
