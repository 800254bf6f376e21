/* @step
creates = ["abuse_cases"]
reads = ["abuse_signals", "case_dispositions", "entity_groups", "prior_case_members", "refund_facts", "refund_verdicts", "signal_catalog"]
params = ["as_of", "run_id"]
*/
-- abuse_cases (SPEC 5, 6): one case per linked group with signals.
--   case_id: the id of last night's case that shares the most entities with the group (so a
--          case keeps its id, and its reviewers' decisions, while its group grows or
--          shrinks), else 'C-' and a hash of the group id.
--   score: 100 * (1 - prod(1 - weight)) over the distinct signal codes ("noisy or"): every
--          signal can only raise the score, and a strong one is never diluted by weak ones.
--   severity: critical >= 80, high >= 60, medium >= 40, else low.
--   money: amount_refunded and amount_at_risk are sums in `currency` when the case's refunds
--          share one currency, else NULL; amounts_by_currency has them per currency.
--   disposition: the latest reviewer decision; a false positive stays quiet until a refund
--          or a signal it did not hold arrives, then the case is `reopened` with the reason.
--   reviewer, decided_at: who took the standing decision, and when; none for an open or a
--          reopened case (the false positive it reopened is named, with its day, in the reason).
CREATE OR REPLACE TABLE abuse_cases AS
WITH evidence AS (
    SELECT group_id,
           list(DISTINCT signal_code ORDER BY signal_code) AS signal_codes,
           list_sort(list_distinct(flatten(list(refund_ids)))) AS refund_ids
    FROM abuse_signals
    GROUP BY group_id
),
prior_overlap AS (
    SELECT evidence.group_id, prior.case_id, count(*) AS shared_entities
    FROM evidence
    JOIN entity_groups AS members USING (group_id)
    JOIN prior_case_members AS prior USING (entity_id)
    GROUP BY evidence.group_id, prior.case_id
),
kept_ids AS (
    -- each group keeps its best-matching prior case, each prior case goes to one group
    SELECT group_id, case_id FROM prior_overlap
    QUALIFY row_number() OVER (PARTITION BY group_id ORDER BY shared_entities DESC, case_id) = 1
        AND row_number() OVER (PARTITION BY case_id ORDER BY shared_entities DESC, group_id) = 1
),
identified AS (
    SELECT evidence.*,
           coalesce(kept.case_id,
                    CASE WHEN 'C-' || substr(md5(evidence.group_id), 1, 12) IN (SELECT case_id FROM kept_ids)
                         THEN 'C-' || substr(md5(evidence.group_id || '@' || getvariable('as_of')), 1, 12)
                         ELSE 'C-' || substr(md5(evidence.group_id), 1, 12) END) AS case_id
    FROM evidence LEFT JOIN kept_ids AS kept USING (group_id)
),
scores AS (
    SELECT identified.group_id,
           round(100 * (1 - product(1 - catalog.weight)), 1) AS score
    FROM identified, unnest(identified.signal_codes) AS codes(signal_code)
    JOIN signal_catalog AS catalog USING (signal_code)
    GROUP BY identified.group_id
),
money_by_currency AS (
    SELECT identified.group_id, verdict.currency,
           count(*) AS refund_count,
           sum(verdict.refund_amount) AS refunded,
           sum(verdict.amount_at_risk) AS at_risk,
           min(billing_day(refund.requested_at)) AS first_refund_day,
           max(billing_day(refund.requested_at)) AS last_refund_day
    FROM identified, unnest(identified.refund_ids) AS ids(refund_id)
    JOIN refund_verdicts AS verdict USING (refund_id)
    JOIN refund_facts AS refund USING (refund_id)
    GROUP BY identified.group_id, verdict.currency
),
money AS (
    SELECT group_id,
           sum(refund_count) AS refund_count,
           CASE WHEN count(*) = 1 THEN min(currency) END AS currency,
           CASE WHEN count(*) = 1 THEN sum(refunded) END AS amount_refunded,
           CASE WHEN count(*) = 1 THEN sum(at_risk) END AS amount_at_risk,
           list({'currency': currency, 'amount_refunded': refunded, 'amount_at_risk': at_risk}
                ORDER BY currency) AS amounts_by_currency,
           min(first_refund_day) AS first_refund_day,
           max(last_refund_day) AS last_refund_day
    FROM money_by_currency
    GROUP BY group_id
),
latest_decision AS (
    SELECT * FROM case_dispositions
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY decided_at DESC, rowid DESC) = 1
),
judged AS (
    SELECT identified.*,
           decision.disposition AS decided,
           decision.reviewer,
           decision.note,
           decision.decided_at,
           list_filter(identified.refund_ids, lambda id: NOT list_contains(decision.refund_ids, id)) AS new_refund_ids,
           list_filter(identified.signal_codes, lambda code: NOT list_contains(decision.signal_codes, code))
               AS new_signal_codes
    FROM identified LEFT JOIN latest_decision AS decision USING (case_id)
),
reopened AS (
    SELECT case_id,
           'new evidence since the false positive of ' || strftime(decided_at, '%Y-%m-%d') || ': '
               || array_to_string(list_filter([
                      CASE WHEN len(new_refund_ids) > 0 THEN 'refunds ' || array_to_string(new_refund_ids, ', ') END,
                      CASE WHEN len(new_signal_codes) > 0 THEN 'signals ' || array_to_string(new_signal_codes, ', ') END
                  ], lambda part: part IS NOT NULL), '; ') AS reason
    FROM judged
    WHERE decided = 'false_positive' AND (len(new_refund_ids) > 0 OR len(new_signal_codes) > 0)
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
       CAST(money.amount_refunded AS DECIMAL(38,2)) AS amount_refunded,
       CAST(money.amount_at_risk AS DECIMAL(38,2)) AS amount_at_risk,
       money.currency,
       money.amounts_by_currency,
       money.first_refund_day,
       money.last_refund_day,
       judged.refund_ids,
       CASE WHEN judged.decided IS NULL THEN 'open'
            WHEN reopened.case_id IS NOT NULL THEN 'reopened'
            ELSE judged.decided END AS disposition,
       coalesce(reopened.reason, judged.note) AS disposition_reason,
       CASE WHEN reopened.case_id IS NULL THEN judged.reviewer END AS reviewer,
       CASE WHEN reopened.case_id IS NULL THEN judged.decided_at END AS decided_at
FROM judged
JOIN scores USING (group_id)
JOIN money USING (group_id)
LEFT JOIN reopened USING (case_id)
ORDER BY scores.score DESC, judged.case_id;
