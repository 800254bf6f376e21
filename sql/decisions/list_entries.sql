/* @step
creates = ["list_entries"]
reads = ["list_events"]
*/
-- list_entries: the block and allow entries standing now, one row per (list_name, kind, value)
-- whose latest event is an `add`. An entry past its expires_at is still listed here (with it),
-- and ignored by the decisions of a run that starts after it (jobs/tools/lists.py shows it expired).
CREATE OR REPLACE VIEW list_entries AS
SELECT list_name, kind, value, reason, who AS added_by, recorded_at AS added_at, expires_at, event_id
FROM list_events
QUALIFY row_number() OVER (PARTITION BY list_name, kind, value ORDER BY event_id DESC) = 1
    AND action = 'add';
