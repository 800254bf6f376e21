/* @step
creates = ["report_run", "report_nights", "report_night_verdicts", "report_night_cases"]
reads = ["runs", "refund_verdicts_history", "abuse_cases_history"]
params = ["run_id", "trend_nights"]
*/
-- The run the report is made of, with the end of its night (midnight after as_of in its
-- billing time zone: the cut-off of everything the report shows).
CREATE OR REPLACE TEMP VIEW report_run AS
SELECT *, timezone(coalesce(billing_time_zone, 'UTC'), (as_of + 1)::TIMESTAMP) AS as_of_end
FROM runs WHERE run_id = getvariable('run_id');

-- The nights of the trend charts, oldest first: the latest run of each of the trend_nights - 1
-- nights before the run, and the run itself (tonight) last. An earlier night is shown as
-- delivered: its latest run from files, a replay only if it has none (a replay reads no file,
-- so it counts no row in or quarantined).
CREATE OR REPLACE TEMP VIEW report_nights AS
SELECT * FROM (
    SELECT * FROM (
        SELECT * FROM runs WHERE as_of < (SELECT as_of FROM report_run)
        QUALIFY row_number() OVER (PARTITION BY as_of ORDER BY mode = 'replay', finished_at DESC, run_id DESC) = 1
        ORDER BY as_of DESC LIMIT getvariable('trend_nights') - 1)
    UNION ALL BY NAME
    SELECT * EXCLUDE (as_of_end) FROM report_run)
ORDER BY as_of;

-- Per night, verdict and currency: refunds, their money at risk and refunded.
CREATE OR REPLACE TEMP VIEW report_night_verdicts AS
SELECT run_id, verdict, coalesce(currency, '?') AS currency, count(*) AS refunds,
       sum(amount_at_risk) AS at_risk, sum(refund_amount) AS amount
FROM refund_verdicts_history WHERE run_id IN (SELECT run_id FROM report_nights)
GROUP BY ALL;

-- Per night: abuse cases, and those still to review.
CREATE OR REPLACE TEMP VIEW report_night_cases AS
SELECT run_id, count(*) AS total, count(*) FILTER (WHERE disposition IN ('open', 'reopened', 'needs_info')) AS open
FROM abuse_cases_history WHERE run_id IN (SELECT run_id FROM report_nights)
GROUP BY run_id;
