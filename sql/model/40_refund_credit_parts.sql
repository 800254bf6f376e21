/* @step
creates = ["refund_credit_parts"]
reads = ["refund_facts"]
*/
-- Each refund split by credit type: what the order paid with that type and what the
-- refund pays back with it (SPEC 1.5: money goes back by the original path).
CREATE OR REPLACE TABLE refund_credit_parts AS
SELECT refund_id, is_live, 'cash' AS credit_type,
       paid_cash_credit AS paid, refund_cash_credit AS refunded
FROM refund_facts
UNION ALL
SELECT refund_id, is_live, 'commission', paid_commission_credit, refund_commission_credit
FROM refund_facts
UNION ALL
SELECT refund_id, is_live, 'free', paid_free_credit, refund_free_credit
FROM refund_facts;
