/* @step
creates = ["open_cases"]
reads = ["abuse_cases", "abuse_cases_history"]
*/
-- open_cases: the latest run's abuse cases still waiting for a reviewer (disposition open,
-- reopened or needs_info), highest score first, with the night each case was first raised
-- (from abuse_cases_history, by case_id) and how many nights it has been seen.
CREATE OR REPLACE VIEW open_cases AS
WITH raised AS (
    SELECT case_id, min(as_of) AS first_seen_as_of, count(DISTINCT as_of) AS nights_seen
    FROM abuse_cases_history
    GROUP BY case_id
)
SELECT cases.case_id,
       cases.disposition,
       cases.severity,
       cases.score,
       cases.entity_ids,
       cases.signal_codes,
       cases.refund_count,
       cases.refund_ids,
       cases.amount_refunded,
       cases.amount_at_risk,
       cases.currency,
       cases.amounts_by_currency,
       cases.first_refund_day,
       cases.last_refund_day,
       cases.disposition_reason,
       raised.first_seen_as_of,
       raised.nights_seen,
       cases.group_id,
       cases.as_of,
       cases.run_id
FROM abuse_cases AS cases
LEFT JOIN raised USING (case_id)
WHERE cases.disposition IN ('open', 'reopened', 'needs_info')
ORDER BY cases.score DESC, cases.case_id;
