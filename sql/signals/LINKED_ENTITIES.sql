/* @signal
code = "LINKED_ENTITIES"
position = 5  # in the catalogue (SPEC table order)
origin = "spec"
weight = 0.7
summary = "the one-at-a-time rule dodged through entities sharing a payment instrument"
reads = ["entity_groups", "fingerprint_sharing", "refund_facts"]
params = ["refund_window_days"]

[settings]  # [signals] keys of the config, with their defaults
linked_entities_window_days = 180
*/
-- SPEC 5: "it belongs to a linked group ... of >= 2 entities, and two live refunds of
-- different entities of that group, requested in the 180 days ending on as_of, are at most
-- refund_window_days - 1 billing days apart (the one-at-a-time rule dodged through other
-- entities); it fires for every entity of the group".
-- Window: linked_entities_window_days; linking limit: linked_fingerprint_max_entities.
WITH group_refunds AS (
    SELECT groups.group_id, refund.*
    FROM refund_facts AS refund
    JOIN entity_groups AS groups USING (entity_id)
    WHERE refund.is_live
      AND groups.group_size >= 2
      AND in_days_ending_on_as_of(refund.request_day, getvariable('linked_entities_window_days'))
),
close_pairs AS (
    SELECT first.group_id, first.refund_id AS first_refund_id, first.entity_id AS first_entity_id,
           second.refund_id AS second_refund_id, second.entity_id AS second_entity_id,
           date_diff('day', first.request_day, second.request_day) AS billing_days_apart
    FROM group_refunds AS first
    JOIN group_refunds AS second
      ON second.group_id = first.group_id
     AND second.entity_id <> first.entity_id
     AND (first.requested_at, first.refund_id) < (second.requested_at, second.refund_id)
     AND date_diff('day', first.request_day, second.request_day) <= getvariable('refund_window_days') - 1
),
groups_that_fire AS (
    SELECT group_id,
           list({'first_refund_id': first_refund_id, 'first_entity_id': first_entity_id,
                 'second_refund_id': second_refund_id, 'second_entity_id': second_entity_id,
                 'billing_days_apart': billing_days_apart}
                ORDER BY first_refund_id, second_refund_id) AS refund_pairs,
           list_sort(list_distinct(flatten(list([first_refund_id, second_refund_id])))) AS refund_ids
    FROM close_pairs
    GROUP BY group_id
)
SELECT groups.entity_id,
       {'group_id': fired.group_id,
        'group_entity_ids': (SELECT list(entity_id ORDER BY entity_id) FROM entity_groups AS members
                             WHERE members.group_id = fired.group_id),
        'shared_fingerprints': (SELECT list({'fingerprint': sharing.fingerprint, 'entity_ids': sharing.entity_ids}
                                            ORDER BY sharing.fingerprint)
                                FROM fingerprint_sharing AS sharing
                                WHERE sharing.links_entities
                                  AND list_contains(sharing.entity_ids, groups.entity_id)),
        'refund_pairs': fired.refund_pairs,
        'refund_window_days': getvariable('refund_window_days'),
        'window_days': getvariable('linked_entities_window_days')} AS evidence,
       fired.refund_ids
FROM groups_that_fire AS fired
JOIN entity_groups AS groups USING (group_id)
