/* @step
creates = ["validation_errors"]
reads = ["quarantine"]
params = ["as_of", "run_id"]
*/
-- validation_errors (SPEC 6): one row per failed check of a quarantined row.
CREATE OR REPLACE TABLE validation_errors AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       source, line, "column", "check", value, message
FROM quarantine
ORDER BY source, line, "column", "check";
