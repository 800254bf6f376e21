/* @rule
code = "PATH_MISMATCH"
position = 6  # in the catalogue (SPEC table order)
category = "policy"
severity = "medium"
whole_refund_at_risk = false
summary = "paid back by another credit type than paid"
reads = ["refund_credit_parts"]
*/
-- Policy 5: "... money goes back by the original path."
-- Fires when, for some credit type, the refund part exceeds the part paid with that type by
-- more than 0.01; at risk: the sum of those excesses.
SELECT refund_id,
       sum(refunded - paid) FILTER (WHERE exceeds_by_more_than_a_cent(refunded, paid)) AS amount_at_risk,
       {'refundable_by_credit_type': map(list(credit_type ORDER BY credit_type), list(paid ORDER BY credit_type)),
        'refunded_by_credit_type': map(list(credit_type ORDER BY credit_type), list(refunded ORDER BY credit_type)),
        'exceeded_credit_types': list(credit_type ORDER BY credit_type)
            FILTER (WHERE exceeds_by_more_than_a_cent(refunded, paid))} AS evidence
FROM refund_credit_parts
WHERE is_live
GROUP BY refund_id
HAVING bool_or(exceeds_by_more_than_a_cent(refunded, paid))
