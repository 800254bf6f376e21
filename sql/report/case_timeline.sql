/* @step
creates = ["case_timeline"]
reads = ["runs", "abuse_cases_history", "purchases", "refunds", "refund_verdicts_history", "account_status"]
params = ["run_id"]
*/
-- case_timeline: what happened to each abuse case's entities as the run saw it (the report's
-- case timelines and `refund-recon review show`): their purchases, refund requests, payouts
-- and rejections, and the status changes of their accounts; one row per event.
-- One cut-off: an event is shown when it happened before the end of the run's night (midnight
-- after as_of in the run's billing time zone). A refund paid or rejected after that shows as
-- requested only, with the verdict the run gave it.
CREATE OR REPLACE TEMP VIEW case_timeline AS
WITH night AS (
    SELECT run_id, timezone(coalesce(billing_time_zone, 'UTC'), (as_of + 1)::TIMESTAMP) AS as_of_end
    FROM runs WHERE run_id = getvariable('run_id')
),
members AS (
    SELECT cases.case_id, member.entity_id
    FROM abuse_cases_history AS cases, unnest(cases.entity_ids) AS member(entity_id)
    WHERE cases.run_id = getvariable('run_id')
),
orders AS (
    SELECT members.case_id, purchase.*
    FROM members JOIN purchases AS purchase USING (entity_id)
    WHERE purchase.purchased_at < (SELECT as_of_end FROM night)
),
refunds_seen AS (
    SELECT orders.case_id, refund.*, verdict.refund_status, verdict.verdict, verdict.rule_codes,
           orders.account_id, orders.entity_id, orders.product
    FROM refunds AS refund
    JOIN orders USING (order_id)
    JOIN refund_verdicts_history AS verdict ON verdict.run_id = getvariable('run_id') AND verdict.refund_id = refund.refund_id
),
accounts AS (SELECT DISTINCT case_id, account_id FROM orders)
SELECT case_id, purchased_at AS happened_at, 1 AS event_order, 'purchase' AS kind, order_id AS ref,
       format('order {} · {} {}{} · paid {} {}{}', order_id, product, package_kind, coalesce(' ' || edition, ''),
              CAST(paid_cash_credit + paid_commission_credit + paid_free_credit AS VARCHAR), currency,
              CASE WHEN discount_amount + coupon_amount > 0
                   THEN format(' (discount {}, coupon {})', CAST(discount_amount AS VARCHAR),
                               CAST(coupon_amount AS VARCHAR)) ELSE '' END) AS detail,
       account_id, entity_id
FROM orders
UNION ALL
SELECT case_id, requested_at, 2, 'refund requested', refund_id,
       format('{} of order {} ({}) · {} {} · verdict {}{}', refund_id, order_id, product,
              CAST(refund_amount AS VARCHAR), currency, verdict,
              CASE WHEN len(rule_codes) > 0 THEN ' (' || array_to_string(rule_codes, ', ') || ')' ELSE '' END),
       account_id, entity_id
FROM refunds_seen
UNION ALL
SELECT case_id, processed_at, 3, 'refund ' || refund_status, refund_id,
       format('{} · {} {}', refund_id, CAST(refund_amount AS VARCHAR), currency), account_id, entity_id
FROM refunds_seen
WHERE refund_status IN ('paid', 'rejected') AND processed_at < (SELECT as_of_end FROM night)
UNION ALL
SELECT accounts.case_id, change.effective_at, 4, 'account ' || change.status, change.account_id,
       format('account {}{}', change.account_id, coalesce(' (' || change.reason || ')', '')), change.account_id, NULL
FROM account_status AS change
JOIN accounts USING (account_id)
WHERE change.effective_at < (SELECT as_of_end FROM night)
ORDER BY case_id, happened_at, event_order, ref;
