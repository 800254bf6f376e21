/* @step
creates = ["abuse_signals"]
reads = ["entity_groups", "signal_catalog", "signal_hits"]
params = ["as_of", "run_id"]
*/
-- abuse_signals (SPEC 6): one row per entity and signal that fired.
CREATE OR REPLACE TABLE abuse_signals AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       hit.entity_id,
       hit.signal_code,
       hit.evidence,
       hit.refund_ids,
       groups.group_id,
       catalog.origin
FROM signal_hits AS hit
JOIN entity_groups AS groups USING (entity_id)
JOIN signal_catalog AS catalog USING (signal_code)
ORDER BY groups.group_id, hit.entity_id, catalog.position;
