/* @invariant
code = "I07"
name = "paid_refunds_in_export_equal_sum_over_verdicts"
reads = ["refund_verdicts", "refunds"]
params = ["as_of_end"]
*/
-- The refunds paid in the export tie out to the verdicts: per currency, the count and the sum
-- of refund_amount of the loaded refunds with status paid and processed by the end of as_of
-- equal those of the paid refunds in refund_verdicts, summed over their verdicts
-- (compliant + breach); no payout is lost or double counted between the export and the verdicts.
WITH exported AS (
    SELECT currency, count(*) AS refunds, sum(refund_amount) AS amount
    FROM refunds
    WHERE status = 'paid' AND processed_at < getvariable('as_of_end')
    GROUP BY currency
),
judged AS (
    SELECT currency, count(*) AS refunds, sum(refund_amount) AS amount
    FROM refund_verdicts
    WHERE refund_status = 'paid' AND verdict IN ('compliant', 'breach')
    GROUP BY currency
),
compared AS (
    SELECT currency,
           coalesce(exported.refunds, 0) AS export_refunds,
           coalesce(exported.amount, 0) AS export_amount,
           coalesce(judged.refunds, 0) AS verdict_refunds,
           coalesce(judged.amount, 0) AS verdict_amount
    FROM exported
    FULL OUTER JOIN judged USING (currency)
)
SELECT coalesce(bool_and(export_refunds = verdict_refunds AND export_amount = verdict_amount), true) AS passed,
       coalesce(string_agg(currency || ' ' || export_amount || ' (' || export_refunds || ' paid)', ', '
                           ORDER BY currency), 'nothing paid') AS expected,
       coalesce(string_agg(currency || ' ' || verdict_amount || ' (' || verdict_refunds || ' paid)', ', '
                           ORDER BY currency), 'nothing paid') AS actual,
       coalesce(string_agg(currency || ': export ' || export_amount || ' in ' || export_refunds
                           || ' refunds, verdicts ' || verdict_amount || ' in ' || verdict_refunds, '; '
                           ORDER BY currency)
                    FILTER (WHERE export_refunds <> verdict_refunds OR export_amount <> verdict_amount),
                'paid refunds in the export equal the paid refunds over all verdicts') AS detail
FROM compared;
