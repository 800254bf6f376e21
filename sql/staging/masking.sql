/* @step
creates = ["masked_fingerprint"]
*/
-- A payment fingerprint (or an account or entity id) as it may be shown to a person: never in
-- full. jobs/outputs/masking.py mask_id in SQL; tests/test_masking.py holds the two equal.
CREATE OR REPLACE TEMP MACRO masked_fingerprint(fingerprint) AS
    CASE WHEN length(fingerprint) >= 10 THEN left(fingerprint, 3) || '…' || right(fingerprint, 2)
         WHEN length(fingerprint) >= 4 THEN left(fingerprint, 1) || '…'
         WHEN fingerprint IS NOT NULL THEN '…' END;
