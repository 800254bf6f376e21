/* @rule
code = "ACCOUNT_SUSPENDED"
position = 4  # in the catalogue (SPEC table order)
category = "policy"
severity = "high"
whole_refund_at_risk = true
summary = "the account is suspended for content or illegal activity"
reads = ["account_status", "refund_facts"]
*/
-- Spark's form of ACCOUNT_SUSPENDED.sql (Spark has no ASOF JOIN): the status in force at
-- requested_at is the latest change effective at or before it, picked by row_number().
WITH status_at_request AS (
    SELECT refund_id, status, reason, effective_at
    FROM (
        SELECT refund.refund_id, change.status, change.reason, change.effective_at,
               row_number() OVER (PARTITION BY refund.refund_id ORDER BY change.effective_at DESC) AS latest
        FROM refund_facts AS refund
        JOIN account_status AS change
          ON change.account_id = refund.account_id AND refund.requested_at >= change.effective_at
        WHERE refund.is_live
    )
    WHERE latest = 1
),
suspensions AS (
    SELECT refund_id, reason, effective_at, 'in force when the refund was requested' AS timing
    FROM status_at_request
    WHERE is_disqualifying_suspension(status, reason)
    UNION ALL
    SELECT refund.refund_id, change.reason, change.effective_at, 'became effective after the request, before the cut-off'
    FROM refund_facts AS refund
    JOIN account_status AS change
      ON change.account_id = refund.account_id
     AND change.effective_at > refund.requested_at
     AND change.effective_at <= refund.cutoff_at
    WHERE refund.is_live AND is_disqualifying_suspension(change.status, change.reason)
)
SELECT refund.refund_id,
       refund.refund_amount AS amount_at_risk,
       {'account_id': refund.account_id,
        'suspension_reason': arg_min(suspension.reason, suspension.effective_at),
        'suspension_effective_at': min(suspension.effective_at),
        'timing': arg_min(suspension.timing, suspension.effective_at),
        'requested_at': refund.requested_at,
        'cutoff_at': refund.cutoff_at} AS evidence
FROM refund_facts AS refund
JOIN suspensions AS suspension USING (refund_id)
GROUP BY refund.refund_id, refund.refund_amount, refund.account_id, refund.requested_at, refund.cutoff_at
