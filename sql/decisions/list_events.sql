/* @step
creates = ["list_events"]
*/
-- list_events: every change to the block and allow lists, appended by `refund-recon lists` and
-- never rewritten by a run (jobs/tools/lists.py). An entry is keyed by (list_name, kind, value); its
-- latest event (by event_id) says whether it stands (`add`, with its reason and expiry) or was
-- taken off (`remove`). A run copies the table in with the reviewers' decisions.
CREATE TABLE IF NOT EXISTS list_events (
    event_id BIGINT NOT NULL PRIMARY KEY,
    action VARCHAR NOT NULL CHECK (action IN ('add', 'remove')),
    list_name VARCHAR NOT NULL CHECK (list_name IN ('block', 'allow')),
    kind VARCHAR NOT NULL CHECK (kind IN ('entity', 'account', 'fingerprint')),
    value VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    who VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
