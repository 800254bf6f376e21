/* @step
creates = ["pending_refund_decisions"]
reads = ["abuse_cases", "list_entries", "purchases", "refund_verdicts"]
params = ["as_of", "hold_min_score", "run_id", "run_started_at"]
*/
-- pending_refund_decisions: what the payout team does with each refund pending tonight
-- (issue 15, docs/decisions.md). One row per refund whose status the run sees as `pending`.
--   decline: its verdict is `stop` (it breaks a policy or reconciliation rule; reasons start
--            with its rule codes), or its entity is in a case whose standing disposition is
--            `confirmed` (a reviewer confirmed the abuse).
--   hold:    not declined, and its entity is in a case not dispositioned (open, reopened,
--            needs_info) scoring at least `[decisions] hold_min_score`, or its entity, account
--            or order's payment fingerprint is on the block list.
--   pay:     everything else, including a refund that would be held but whose entity, account
--            or fingerprint is on the allow list (an allow entry lifts holds, never a decline).
-- A list entry whose expires_at is at or before the run's start is ignored, and the reasons say
-- so. case_id and score are the refund's entity's case, whatever it decided. A fingerprint is
-- named masked, as everywhere a person reads it.
CREATE OR REPLACE TABLE pending_refund_decisions AS
WITH pending AS (
    SELECT verdict.*, purchase.payment_fingerprint
    FROM refund_verdicts AS verdict
    JOIN purchases AS purchase USING (order_id)
    WHERE verdict.refund_status = 'pending'
),
membership AS (
    SELECT member.entity_id, cases.case_id, cases.score, cases.disposition, cases.signal_codes,
           cases.reviewer, cases.decided_at
    FROM abuse_cases AS cases, unnest(cases.entity_ids) AS member(entity_id)
),
entries AS (
    SELECT *,
           expires_at IS NOT NULL AND expires_at <= getvariable('run_started_at') AS expired,
           list_name || ' ' || kind || ' '
               || CASE kind WHEN 'fingerprint' THEN masked_fingerprint(value) ELSE value END
               || ': ' || reason || ' (' || added_by
               || CASE WHEN expires_at IS NULL THEN '' ELSE ', until ' || strftime(expires_at, '%Y-%m-%d %H:%M %z') END
               || ')' AS described
    FROM list_entries
),
matches AS (
    SELECT pending.refund_id,
           list(entries.described ORDER BY entries.described)
               FILTER (WHERE entries.list_name = 'block' AND NOT entries.expired) AS blocks,
           list(entries.described ORDER BY entries.described)
               FILTER (WHERE entries.list_name = 'allow' AND NOT entries.expired) AS allows,
           list(entries.described || ' expired, ignored' ORDER BY entries.described)
               FILTER (WHERE entries.expired) AS expired
    FROM pending
    JOIN entries ON (entries.kind = 'entity' AND entries.value = pending.entity_id)
        OR (entries.kind = 'account' AND entries.value = pending.account_id)
        OR (entries.kind = 'fingerprint' AND entries.value = pending.payment_fingerprint)
    GROUP BY pending.refund_id
),
facts AS (
    SELECT pending.*,
           membership.case_id, membership.score, membership.disposition, membership.signal_codes,
           membership.reviewer, membership.decided_at,
           pending.verdict = 'stop' AS breaks_rule,
           membership.disposition = 'confirmed' AS confirmed_abuse,
           membership.disposition IN ('open', 'reopened', 'needs_info')
               AND membership.score >= CAST(getvariable('hold_min_score') AS DOUBLE) AS held_by_case,
           coalesce(matches.blocks, []) AS blocks,
           coalesce(matches.allows, []) AS allows,
           coalesce(matches.expired, []) AS expired
    FROM pending
    LEFT JOIN membership USING (entity_id)
    LEFT JOIN matches USING (refund_id)
),
decided AS (
    SELECT *,
           CASE WHEN breaks_rule OR coalesce(confirmed_abuse, false) THEN 'decline'
                WHEN (coalesce(held_by_case, false) OR len(blocks) > 0) AND len(allows) = 0 THEN 'hold'
                ELSE 'pay' END AS decision,
           printf('case %s (%s, score %.1f, hold at %g: %s)', case_id, disposition, score,
                  CAST(getvariable('hold_min_score') AS DOUBLE), array_to_string(signal_codes, ', ')) AS case_described
    FROM facts
)
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       refund_id, order_id, account_id, entity_id, refund_amount, currency, decision,
       flatten([
           rule_codes,
           CASE WHEN confirmed_abuse THEN ['case ' || case_id || ' confirmed as abuse by ' || reviewer
                                           || ' on ' || strftime(decided_at, '%Y-%m-%d')]
                WHEN case_id IS NOT NULL THEN [case_described] ELSE [] END,
           blocks,
           list_transform(allows, lambda entry: entry || CASE decision
               WHEN 'decline' THEN ' - an allow entry never lifts a decline'
               WHEN 'pay' THEN CASE WHEN coalesce(held_by_case, false) OR len(blocks) > 0
                                    THEN ' - lifts the hold' ELSE '' END
               ELSE '' END),
           expired
       ]) AS reasons,
       case_id,
       score
FROM decided
ORDER BY refund_id;
