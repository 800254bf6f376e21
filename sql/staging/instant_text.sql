/* @step
creates = ["instant_text"]
*/
-- An instant as text, as DuckDB prints a TIMESTAMPTZ in the session's zone (the billing zone):
-- 2025-06-25 23:00:00+08, 2025-06-25 23:00:00.5+05:30. The value of a quarantined row's instant
-- in validation_errors. Spark prints it without the offset: instant_text.spark.sql adds it.
CREATE OR REPLACE TEMP MACRO instant_text(instant) AS CAST(instant AS VARCHAR);
