/* @step
creates = ["report_gates", "report_night_money", "report_decisions"]
reads = ["gate_results_history", "daily_reconciliation_history", "pending_refund_decisions_history", "report_nights"]
params = ["run_id"]
*/
-- The first screen of the report: is tonight trustworthy, what must be done today, the money.

-- The run's gates, in the order they ran (a failed one is a warning: jobs/outputs/outcome.py).
CREATE OR REPLACE TEMP VIEW report_gates AS
SELECT gate, source, passed, observed, expected, message
FROM gate_results_history WHERE run_id = getvariable('run_id')
ORDER BY gate, source;

-- Per night of the trend and currency: the money finance came for, over every billing day the
-- night's daily_reconciliation holds (what is at risk, recoverable and owed as of that night).
CREATE OR REPLACE TEMP VIEW report_night_money AS
SELECT run_id, currency, sum(at_risk_total) AS amount_at_risk, sum(amount_recoverable) AS amount_recoverable,
       sum(amount_owed_to_customers) AS amount_owed_to_customers,
       sum(refunds_paid_compliant_amount) AS paid_compliant, sum(refunds_paid_in_breach_amount) AS paid_in_breach,
       sum(at_risk_stop) AS at_risk_stop
FROM daily_reconciliation_history WHERE run_id IN (SELECT run_id FROM report_nights)
GROUP BY ALL
ORDER BY run_id, currency;

-- Tonight's pending refunds per decision (pay, hold, decline: docs/decisions.md) and currency.
CREATE OR REPLACE TEMP VIEW report_decisions AS
SELECT decision, currency, count(*) AS refunds, sum(refund_amount) AS amount
FROM pending_refund_decisions_history WHERE run_id = getvariable('run_id')
GROUP BY decision, currency
ORDER BY list_position(['decline', 'hold', 'pay'], decision), currency;
