/* @signal
code = "LINKED_TO_SUSPENDED"
position = 6  # in the catalogue (SPEC table order)
origin = "extra"
weight = 0.6
summary = "another account of the entity or its group is suspended"
reads = ["account_status", "entity_groups", "group_accounts", "refund_facts"]

[settings]  # [signals] keys of the config, with their defaults
linked_to_suspended_window_days = 180
*/
-- Beyond the SPEC. Policy 4: "No package of an account suspended for content review ... or
-- for illegal activities is refundable" - dodged by refunding through another account.
-- Fires for an entity with a live refund requested in the linked_to_suspended_window_days
-- ending on as_of when another account of the entity or of its linked group (not the
-- refunded order's account) has a disqualifying suspension in force at the end of as_of.
WITH status_now AS (
    SELECT account_id, status, reason, effective_at
    FROM account_status
    QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY effective_at DESC) = 1
),
suspended_accounts AS (
    SELECT accounts.group_id, accounts.entity_id, accounts.account_id, status_now.reason, status_now.effective_at
    FROM group_accounts AS accounts
    JOIN status_now USING (account_id)
    WHERE is_disqualifying_suspension(status_now.status, status_now.reason)
),
matches AS (
    SELECT refund.entity_id, refund.refund_id, refund.account_id AS refund_account_id,
           suspended.account_id AS suspended_account_id, suspended.entity_id AS suspended_entity_id,
           suspended.reason, suspended.effective_at
    FROM refund_facts AS refund
    JOIN entity_groups AS groups USING (entity_id)
    JOIN suspended_accounts AS suspended
      ON suspended.group_id = groups.group_id AND suspended.account_id <> refund.account_id
    WHERE refund.is_live
      AND in_days_ending_on_as_of(refund.request_day, getvariable('linked_to_suspended_window_days'))
)
SELECT entity_id,
       {'window_days': getvariable('linked_to_suspended_window_days'),
        'suspended_accounts': list_sort(list(DISTINCT {'account_id': suspended_account_id,
                                                       'entity_id': suspended_entity_id,
                                                       'reason': reason, 'effective_at': effective_at})),
        'refunded_accounts': list(DISTINCT refund_account_id ORDER BY refund_account_id)} AS evidence,
       list(DISTINCT refund_id ORDER BY refund_id) AS refund_ids
FROM matches
GROUP BY entity_id
