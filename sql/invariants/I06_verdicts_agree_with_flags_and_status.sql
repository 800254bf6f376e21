/* @invariant
code = "I06"
name = "verdicts_agree_with_flags_and_status"
reads = ["refund_facts", "refund_flags", "refund_verdicts"]
*/
-- Each verdict follows from the refund's flags and the status the run sees (SPEC 4): a
-- flagged refund is `breach` (paid or rejected) or `stop` (pending), never compliant; an
-- unflagged one is `compliant`, or `rejected` when rejected; every flag's refund has a
-- verdict, and that verdict lists the flag's rule code.
WITH flagged AS (
    SELECT refund_id, list(rule_code) AS codes FROM refund_flags GROUP BY refund_id
),
judged AS (
    SELECT verdict.refund_id,
           verdict.verdict,
           refund.refund_status,
           flagged.codes,
           CASE WHEN flagged.codes IS NOT NULL AND refund.refund_status = 'pending' THEN 'stop'
                WHEN flagged.codes IS NOT NULL THEN 'breach'
                WHEN refund.refund_status = 'rejected' THEN 'rejected'
                ELSE 'compliant' END AS due
    FROM refund_verdicts AS verdict
    LEFT JOIN refund_facts AS refund USING (refund_id)
    LEFT JOIN flagged USING (refund_id)
),
problems AS (
    SELECT refund_id,
           'verdict ' || coalesce(verdict, 'NULL') || ', due ' || due || ' (status '
               || coalesce(refund_status, 'unknown') || ', flags '
               || coalesce(array_to_string(codes, '+'), 'none') || ')' AS problem
    FROM judged
    WHERE verdict IS DISTINCT FROM due
    UNION ALL
    SELECT flag.refund_id,
           'flag ' || flag.rule_code || CASE WHEN verdict.refund_id IS NULL THEN ' has no verdict'
                                             ELSE ' missing from the verdict''s rule_codes' END
    FROM refund_flags AS flag
    LEFT JOIN refund_verdicts AS verdict USING (refund_id)
    WHERE verdict.refund_id IS NULL OR NOT list_contains(verdict.rule_codes, flag.rule_code)
)
SELECT count(*) = 0 AS passed,
       '0 disagreements' AS expected,
       count(*) || ' disagreements' AS actual,
       coalesce(string_agg(refund_id || ': ' || problem, '; ' ORDER BY refund_id),
                'every verdict follows from its flags and status') AS detail
FROM problems;
