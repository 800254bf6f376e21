/* @step
creates = ["instant_text"]
*/
-- Spark's form of instant_text.sql: Spark prints a timestamp in the session's zone (the run sets
-- it to the billing zone) without its offset, so the offset is added as DuckDB prints it: the
-- zone's '+0800' (strftime's %z, the billing zone's) as '+08', '+0530' as '+05:30'.
CREATE OR REPLACE TEMP MACRO instant_text(instant) AS
CAST(instant AS VARCHAR)
    || regexp_replace(regexp_replace(strftime(instant, '%z'), '00$', ''), '([0-9]{2})([0-9]{2})$', '$1:$2');
