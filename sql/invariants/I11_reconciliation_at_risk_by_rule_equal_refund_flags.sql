/* @invariant
code = "I11"
name = "reconciliation_at_risk_by_rule_equal_refund_flags"
reads = ["daily_reconciliation", "purchases", "refund_flags", "rule_catalog"]
*/
-- daily_reconciliation's money at risk per rule adds up to refund_flags: per currency and rule
-- code of the catalogue, the at_risk_<rule code> column summed over its days and products
-- equals the sum of amount_at_risk of that code's flags, and flags_count equals the number of
-- flags; a rule with flags but no column of its own fails here.
WITH flagged AS (
    SELECT purchase.currency, flag.rule_code, count(*) AS flags, sum(flag.amount_at_risk) AS amount
    FROM refund_flags AS flag
    LEFT JOIN purchases AS purchase USING (order_id)
    GROUP BY ALL
),
by_rule AS (
    UNPIVOT (SELECT currency, COLUMNS('^at_risk_') FROM daily_reconciliation)
    ON COLUMNS(* EXCLUDE (currency)) INTO NAME column_name VALUE amount
),
reconciled AS (
    SELECT currency, upper(substr(column_name, length('at_risk_') + 1)) AS rule_code, sum(amount) AS amount
    FROM by_rule
    GROUP BY ALL
),
expected AS (
    SELECT currency, rule_code || ' ' || amount AS text, amount
    FROM flagged
    UNION ALL
    SELECT currency, 'flags ' || sum(flags), NULL FROM flagged GROUP BY currency
),
actual AS (
    SELECT currency, rule_code || ' ' || amount AS text, amount
    FROM reconciled
    WHERE rule_code IN (SELECT rule_code FROM rule_catalog)
      AND (amount <> 0 OR (currency, rule_code) IN (SELECT (currency, rule_code) FROM flagged))
    UNION ALL
    SELECT currency, 'flags ' || sum(flags_count), NULL
    FROM daily_reconciliation
    GROUP BY currency
    HAVING sum(flags_count) > 0 OR currency IN (SELECT currency FROM flagged)
),
compared AS (
    SELECT currency,
           (SELECT string_agg(text, ', ' ORDER BY text) FROM expected AS e WHERE e.currency = c.currency) AS expected_text,
           (SELECT string_agg(text, ', ' ORDER BY text) FROM actual AS a WHERE a.currency = c.currency) AS actual_text
    FROM (SELECT currency FROM expected UNION SELECT currency FROM actual) AS c
)
SELECT unnest(currency_tie_out(list({'currency': currency, 'expected': expected_text, 'actual': actual_text}
                                    ORDER BY currency),
                               'money at risk per rule and flag counts'))
FROM compared;
