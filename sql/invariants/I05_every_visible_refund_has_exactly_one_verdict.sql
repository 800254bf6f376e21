/* @invariant
code = "I05"
name = "every_visible_refund_has_exactly_one_verdict"
reads = ["refund_verdicts", "refunds"]
*/
-- Every refund visible to the run (every loaded refund) has exactly one row in
-- refund_verdicts, and refund_verdicts holds no refund that was not loaded (SPEC 4, 6).
WITH loaded AS (
    SELECT refund_id FROM refunds
),
verdicts AS (
    SELECT refund_id, count(*) AS verdicts FROM refund_verdicts GROUP BY refund_id
),
problems AS (
    SELECT coalesce(loaded.refund_id, verdicts.refund_id) AS refund_id,
           CASE WHEN verdicts.refund_id IS NULL THEN 'no verdict'
                WHEN loaded.refund_id IS NULL THEN 'verdict for a refund that was not loaded'
                ELSE verdicts.verdicts || ' verdicts' END AS problem
    FROM loaded
    FULL OUTER JOIN verdicts USING (refund_id)
    WHERE verdicts.refund_id IS NULL OR loaded.refund_id IS NULL OR verdicts.verdicts <> 1
)
SELECT count(*) = 0 AS passed,
       (SELECT count(*) FROM refunds) || ' refunds, one verdict each' AS expected,
       (SELECT count(*) FROM refund_verdicts) || ' verdicts for '
           || (SELECT count(DISTINCT refund_id) FROM refund_verdicts) || ' refunds' AS actual,
       coalesce(string_agg(refund_id || ': ' || problem, '; ' ORDER BY refund_id),
                'every visible refund has exactly one verdict') AS detail
FROM problems;
