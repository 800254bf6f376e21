/* @step
creates = ["report_cases", "report_case_signals", "report_case_refunds", "report_case_accounts",
           "report_case_decisions", "report_case_events"]
reads = ["abuse_cases_history", "abuse_signals_history", "signal_catalog", "refund_verdicts_history", "refunds",
         "purchases", "account_status", "case_dispositions", "report_run", "case_timeline"]
params = ["run_id", "top_cases"]
*/
-- The run's abuse cases, ranked: highest score first, then money at risk, refunds, case id.
-- The top_cases first are shown in full, with the views below.
CREATE OR REPLACE TEMP VIEW report_cases AS
SELECT row_number() OVER (ORDER BY score DESC, amount_at_risk DESC NULLS LAST, refund_count DESC, case_id) AS rank,
       disposition IN ('open', 'reopened', 'needs_info') AS to_review, *
FROM abuse_cases_history WHERE run_id = getvariable('run_id')
ORDER BY rank;

-- The signals of each case shown, one row per signal and entity, with the signal's summary.
CREATE OR REPLACE TEMP VIEW report_case_signals AS
SELECT shown.case_id, signal.signal_code, coalesce(catalog.summary, '') AS summary, signal.entity_id,
       signal.evidence, signal.refund_ids
FROM report_cases AS shown, unnest(shown.entity_ids) AS member(entity_id)
JOIN abuse_signals_history AS signal ON signal.run_id = shown.run_id AND signal.entity_id = member.entity_id
LEFT JOIN signal_catalog AS catalog ON catalog.signal_code = signal.signal_code
WHERE shown.rank <= getvariable('top_cases')
ORDER BY shown.rank, signal.signal_code, signal.entity_id;

-- The refunds of each case shown, with their verdicts, in request order.
CREATE OR REPLACE TEMP VIEW report_case_refunds AS
SELECT shown.case_id, verdict.*, refund.requested_at
FROM report_cases AS shown, unnest(shown.refund_ids) AS evidence(refund_id)
JOIN refund_verdicts_history AS verdict ON verdict.run_id = shown.run_id AND verdict.refund_id = evidence.refund_id
LEFT JOIN refunds AS refund ON refund.refund_id = verdict.refund_id
WHERE shown.rank <= getvariable('top_cases')
ORDER BY shown.rank, refund.requested_at NULLS LAST, verdict.refund_id;

-- The accounts of each case shown, with their orders and status at the end of the night.
CREATE OR REPLACE TEMP VIEW report_case_accounts AS
WITH accounts AS (
    SELECT shown.rank, shown.case_id, purchase.entity_id, purchase.account_id, count(*) AS orders
    FROM report_cases AS shown, unnest(shown.entity_ids) AS member(entity_id)
    JOIN purchases AS purchase ON purchase.entity_id = member.entity_id
    WHERE shown.rank <= getvariable('top_cases') AND purchase.purchased_at < (SELECT as_of_end FROM report_run)
    GROUP BY ALL
),
status_then AS (
    SELECT account_id, status, reason, effective_at FROM account_status
    WHERE effective_at < (SELECT as_of_end FROM report_run)
    QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY effective_at DESC) = 1
)
SELECT accounts.case_id, accounts.entity_id, accounts.account_id, accounts.orders,
       coalesce(status_then.status, 'active') AS status, status_then.reason, status_then.effective_at
FROM accounts LEFT JOIN status_then USING (account_id)
ORDER BY accounts.rank, accounts.entity_id, accounts.account_id;

-- The reviewers' latest five decisions on each case shown, taken before the run finished.
CREATE OR REPLACE TEMP VIEW report_case_decisions AS
SELECT shown.case_id, decision.disposition, decision.reviewer, decision.note, decision.decided_at
FROM report_cases AS shown
JOIN case_dispositions AS decision ON decision.case_id = shown.case_id
WHERE shown.rank <= getvariable('top_cases') AND decision.decided_at <= (SELECT finished_at FROM report_run)
QUALIFY row_number() OVER (PARTITION BY shown.case_id ORDER BY decision.decided_at DESC) <= 5
ORDER BY shown.rank, decision.decided_at DESC;

-- The timeline of each case shown (case_timeline).
CREATE OR REPLACE TEMP VIEW report_case_events AS
SELECT timeline.*
FROM case_timeline AS timeline JOIN report_cases AS shown USING (case_id)
WHERE shown.rank <= getvariable('top_cases')
ORDER BY shown.rank, timeline.happened_at, timeline.event_order, timeline.ref;
