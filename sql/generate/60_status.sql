/* @step
creates = ["status_changes"]
reads = ["orders", "refund_plan", "scripted_status"]
params = ["as_of_end", "export_at", "history_seconds", "history_start"]
*/
-- Account status changes: arrears and security suspensions (not disqualifying), closures,
-- the content / illegal-activity suspensions of `account_suspended` refunds, and the
-- scripted ones. (account_id, effective_at) is kept unique.
CREATE OR REPLACE TABLE status_changes AS
WITH accounts AS (
    SELECT DISTINCT account_no FROM orders WHERE origin = 'background'
),
background AS (
    SELECT account_no, at_second(getvariable('history_start'), rnd(account_no, 'arrears_at') * getvariable('history_seconds')) AS effective_local,
           'suspended' AS status, 'overdue_payment' AS reason, pick(account_no, 'arrears_days', 2, 15) AS lasts_days
    FROM accounts WHERE rnd(account_no, 'arrears') < 0.04
    UNION ALL
    SELECT account_no, at_second(getvariable('history_start'), rnd(account_no, 'security_at') * getvariable('history_seconds')),
           'suspended', 'security_risk', pick(account_no, 'security_days', 1, 3)
    FROM accounts WHERE rnd(account_no, 'security') < 0.005
    UNION ALL
    SELECT account_no, getvariable('export_at') - to_seconds(CAST(rnd(account_no, 'closed_at') * 60 * 86400 AS BIGINT)),
           'closed', 'user_request', NULL
    FROM accounts WHERE rnd(account_no, 'closed') < 0.005
),
disqualifying AS (
    -- Half in force at the request, half effective between the request and the cut-off.
    SELECT account_no,
           CASE WHEN rnd(order_no, 'suspension_timing') < 0.5
                THEN purchased_local + (requested_local - purchased_local) / 2
                ELSE requested_local + (least(coalesce(processed_local, getvariable('as_of_end')), getvariable('as_of_end')) - requested_local) / 2
           END AS effective_local,
           'suspended' AS status,
           CASE WHEN rnd(order_no, 'suspension_reason') < 0.7 THEN 'content_violation' ELSE 'illegal_activity' END AS reason,
           CASE WHEN rnd(order_no, 'lifted') < 0.5 THEN pick(order_no, 'lifted_days', 15, 45) END AS lasts_days
    FROM refund_plan
    WHERE refund_kind = 'account_suspended' AND copy = 0
),
suspensions AS (
    SELECT * FROM background
    UNION ALL SELECT * FROM disqualifying
    UNION ALL SELECT account_no, effective_local, status, reason, NULL FROM scripted_status
),
changes AS (
    SELECT account_no, date_trunc('second', effective_local) AS effective_local, status, reason FROM suspensions
    UNION ALL
    SELECT account_no, date_trunc('second', effective_local) + to_days(CAST(lasts_days AS INTEGER)), 'active', NULL
    FROM suspensions WHERE lasts_days IS NOT NULL
)
SELECT * FROM changes
QUALIFY row_number() OVER (PARTITION BY account_no, effective_local ORDER BY status, reason) = 1;
