/* @step
creates = ["report_run_choice"]
reads = ["runs"]
params = ["as_of"]
*/
-- The run a report is made of: the latest run of the night as_of, or the latest run at all
-- when as_of is NULL.
CREATE OR REPLACE TEMP VIEW report_run_choice AS
SELECT run_id FROM runs
WHERE getvariable('as_of') IS NULL OR as_of = getvariable('as_of')
ORDER BY finished_at DESC, run_id DESC
LIMIT 1;
