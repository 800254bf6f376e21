/* @step
creates = ["report_validation_checks", "report_validation_examples"]
reads = ["validation_errors_history"]
params = ["run_id", "examples_per_check", "max_examples"]
*/
-- The run's validation failures per file, check and column, most failures first.
CREATE OR REPLACE TEMP VIEW report_validation_checks AS
SELECT source, "check", "column", count(*) AS failures, count(DISTINCT line) AS rows
FROM validation_errors_history WHERE run_id = getvariable('run_id')
GROUP BY ALL
ORDER BY failures DESC, source, "check";

-- A few quarantined rows of each file and check (examples_per_check, max_examples in all).
CREATE OR REPLACE TEMP VIEW report_validation_examples AS
SELECT source, line, "column", "check", value, message
FROM validation_errors_history WHERE run_id = getvariable('run_id')
QUALIFY row_number() OVER (PARTITION BY source, "check" ORDER BY line, "column") <= getvariable('examples_per_check')
ORDER BY source, line, "column"
LIMIT getvariable('max_examples');
