/* @step
creates = ["flag_changes"]
reads = ["refund_flags_history", "runs"]
*/
-- flag_changes: what changed in refund_flags since the previous night (issue #4). The latest
-- run is compared with the latest run of the night before it (the greatest earlier as_of):
--   new       a flag raised tonight that the night before did not have;
--   resolved  a flag of the night before that tonight no longer raises;
--   changed   the same refund and code with another status, money at risk or evidence.
-- When did a flag first appear? See refund_flags_history (min(as_of) per refund_id, rule_code).
CREATE OR REPLACE VIEW flag_changes AS
WITH latest AS (
    SELECT arg_max(run_id, finished_at) AS run_id, arg_max(as_of, finished_at) AS as_of FROM runs
),
previous AS (
    SELECT arg_max(run_id, (as_of, finished_at)) AS run_id, max(as_of) AS as_of
    FROM runs WHERE as_of < (SELECT as_of FROM latest)
),
tonight AS (SELECT * FROM refund_flags_history WHERE run_id = (SELECT run_id FROM latest)),
before AS (SELECT * FROM refund_flags_history WHERE run_id = (SELECT run_id FROM previous))
SELECT (SELECT as_of FROM latest) AS as_of,
       (SELECT as_of FROM previous) AS previous_as_of,
       CASE WHEN before.refund_id IS NULL THEN 'new'
            WHEN tonight.refund_id IS NULL THEN 'resolved'
            ELSE 'changed' END AS change,
       refund_id,
       rule_code,
       coalesce(tonight.order_id, before.order_id) AS order_id,
       coalesce(tonight.entity_id, before.entity_id) AS entity_id,
       coalesce(tonight.category, before.category) AS category,
       coalesce(tonight.severity, before.severity) AS severity,
       before.refund_status AS previous_refund_status,
       tonight.refund_status,
       before.amount_at_risk AS previous_amount_at_risk,
       tonight.amount_at_risk,
       before.evidence AS previous_evidence,
       tonight.evidence
FROM tonight
FULL OUTER JOIN before USING (refund_id, rule_code)
WHERE tonight.refund_id IS NULL OR before.refund_id IS NULL
   OR tonight.refund_status IS DISTINCT FROM before.refund_status
   OR tonight.amount_at_risk IS DISTINCT FROM before.amount_at_risk
   OR tonight.evidence IS DISTINCT FROM before.evidence;
