-- abuse_signals (SPEC 6): one row per entity and signal that fired.
CREATE OR REPLACE TABLE abuse_signals AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       hit.entity_id,
       hit.signal_code,
       hit.evidence,
       hit.refund_ids,
       groups.group_id,
       catalog.origin
FROM signal_hits AS hit
JOIN entity_groups AS groups USING (entity_id)
JOIN signal_catalog AS catalog USING (signal_code)
ORDER BY groups.group_id, hit.entity_id, catalog.position;

-- abuse_cases (SPEC 5, 6): one case per linked group with signals.
--   score: 100 * (1 - prod(1 - weight)) over the distinct signal codes ("noisy or"): every
--          signal can only raise the score, and a strong one is never diluted by weak ones.
--   severity: critical >= 80, high >= 60, medium >= 40, else low.
--   disposition: the latest reviewer decision; a false positive stays quiet until a refund
--          or a signal it did not hold arrives, then the case is `reopened` with the reason.
CREATE OR REPLACE TABLE abuse_cases AS
WITH evidence AS (
    SELECT group_id,
           'C-' || substr(md5(group_id), 1, 12) AS case_id,
           list(DISTINCT signal_code ORDER BY signal_code) AS signal_codes,
           list_sort(list_distinct(flatten(list(refund_ids)))) AS refund_ids
    FROM abuse_signals
    GROUP BY group_id
),
scores AS (
    SELECT evidence.group_id,
           round(100 * (1 - product(1 - catalog.weight)), 1) AS score
    FROM evidence, unnest(evidence.signal_codes) AS codes(signal_code)
    JOIN signal_catalog AS catalog USING (signal_code)
    GROUP BY evidence.group_id
),
money AS (
    SELECT evidence.group_id,
           count(verdict.refund_id) AS refund_count,
           sum(verdict.refund_amount) AS amount_refunded,
           sum(verdict.amount_at_risk) AS amount_at_risk,
           list(DISTINCT verdict.currency ORDER BY verdict.currency) AS currencies,
           min(billing_day(refund.requested_at)) AS first_refund_day,
           max(billing_day(refund.requested_at)) AS last_refund_day
    FROM evidence, unnest(evidence.refund_ids) AS ids(refund_id)
    JOIN refund_verdicts AS verdict USING (refund_id)
    JOIN refund_facts AS refund USING (refund_id)
    GROUP BY evidence.group_id
),
latest_decision AS (
    SELECT * FROM case_dispositions
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY decided_at DESC) = 1
),
judged AS (
    SELECT evidence.*,
           decision.disposition AS decided,
           decision.reviewer,
           decision.note,
           decision.decided_at,
           list_filter(evidence.refund_ids, lambda id: NOT list_contains(decision.refund_ids, id)) AS new_refund_ids,
           list_filter(evidence.signal_codes, lambda code: NOT list_contains(decision.signal_codes, code)) AS new_signal_codes
    FROM evidence LEFT JOIN latest_decision AS decision USING (case_id)
)
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       judged.case_id,
       judged.group_id,
       (SELECT list(entity_id ORDER BY entity_id) FROM entity_groups AS members
        WHERE members.group_id = judged.group_id) AS entity_ids,
       judged.signal_codes,
       scores.score,
       CASE WHEN scores.score >= 80 THEN 'critical' WHEN scores.score >= 60 THEN 'high'
            WHEN scores.score >= 40 THEN 'medium' ELSE 'low' END AS severity,
       money.refund_count,
       CAST(money.amount_refunded AS DECIMAL(18,2)) AS amount_refunded,
       CAST(money.amount_at_risk AS DECIMAL(18,2)) AS amount_at_risk,
       money.currencies,
       money.first_refund_day,
       money.last_refund_day,
       judged.refund_ids,
       CASE WHEN judged.decided IS NULL THEN 'open'
            WHEN judged.decided = 'false_positive' AND (len(judged.new_refund_ids) > 0 OR len(judged.new_signal_codes) > 0)
                THEN 'reopened'
            ELSE judged.decided END AS disposition,
       CASE WHEN judged.decided = 'false_positive' AND (len(judged.new_refund_ids) > 0 OR len(judged.new_signal_codes) > 0)
                THEN 'new evidence since the false positive of ' || strftime(judged.decided_at, '%Y-%m-%d')
                     || ': refunds ' || array_to_string(judged.new_refund_ids, ', ')
                     || '; signals ' || array_to_string(judged.new_signal_codes, ', ')
            ELSE judged.note END AS disposition_reason,
       judged.reviewer,
       judged.decided_at
FROM judged
JOIN scores USING (group_id)
JOIN money USING (group_id)
ORDER BY scores.score DESC, judged.case_id;
