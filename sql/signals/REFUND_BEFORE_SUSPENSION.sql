/* @signal
code = "REFUND_BEFORE_SUSPENSION"
position = 4  # in the catalogue (SPEC table order)
origin = "spec"
weight = 0.8
summary = "a refund shortly before a disqualifying suspension"
reads = ["account_status", "group_accounts", "refund_facts"]

[settings]  # [signals] keys of the config, with their defaults
refund_before_suspension_max_days = 7
*/
-- SPEC 5: "one of its accounts got a disqualifying suspension effective after one of its
-- live refunds was requested and at most 7 billing days after that refund's billing day".
-- Window: refund_before_suspension_max_days.
WITH refunds_then_suspended AS (
    SELECT refund.entity_id, refund.refund_id, refund.order_id, refund.requested_at,
           change.account_id AS suspended_account_id, change.reason, change.effective_at,
           date_diff('day', refund.request_day, billing_day(change.effective_at)) AS days_after_request
    FROM refund_facts AS refund
    JOIN group_accounts AS own ON own.entity_id = refund.entity_id
    JOIN account_status AS change ON change.account_id = own.account_id
    WHERE refund.is_live
      AND is_disqualifying_suspension(change.status, change.reason)
      AND change.effective_at > refund.requested_at
      AND date_diff('day', refund.request_day, billing_day(change.effective_at))
          <= getvariable('refund_before_suspension_max_days')
)
SELECT entity_id,
       {'max_days': getvariable('refund_before_suspension_max_days'),
        'suspensions': list({'refund_id': refund_id, 'order_id': order_id, 'requested_at': requested_at,
                             'account_id': suspended_account_id, 'reason': reason,
                             'effective_at': effective_at, 'days_after_request': days_after_request}
                            ORDER BY requested_at, refund_id, effective_at)} AS evidence,
       list(DISTINCT refund_id ORDER BY refund_id) AS refund_ids
FROM refunds_then_suspended
GROUP BY entity_id
