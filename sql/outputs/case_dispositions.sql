/* @step
creates = ["case_dispositions"]
*/
-- case_dispositions: every reviewer decision, appended, never rewritten by a run. The
-- latest decision of a case (by decided_at) is its disposition. refund_ids and signal_codes
-- are what the case held when it was decided, so that new evidence can reopen a case
-- dismissed as a false positive.
CREATE TABLE IF NOT EXISTS case_dispositions (
    case_id VARCHAR NOT NULL,
    disposition VARCHAR NOT NULL CHECK (disposition IN ('confirmed', 'false_positive', 'needs_info')),
    reviewer VARCHAR NOT NULL,
    note VARCHAR,
    decided_at TIMESTAMPTZ NOT NULL,
    refund_ids VARCHAR[],
    signal_codes VARCHAR[]
);
