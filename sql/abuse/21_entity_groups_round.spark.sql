/* @step
creates = ["next_entity_labels", "label_changes", "entity_labels"]
reads = ["entity_labels", "entity_links"]
repeat_until = "SELECT changed = 0 FROM label_changes"
max_rounds = 64
*/
-- Spark's form of one round (Spark pays ~0.5 s a statement, so rounds must be few): label
-- propagation as in 21_entity_groups_round.sql, then pointer jumping - each entity also takes its
-- label's own label - so a chain of n hops settles in about log2(n) rounds instead of n. The same
-- fixed point: labels only fall, stay ids of the same group, and settle when every group carries
-- its smallest entity id.
CREATE OR REPLACE TABLE next_entity_labels AS
WITH fingerprint_labels AS (
    SELECT links.payment_fingerprint, min(labels.label) AS label
    FROM entity_links AS links JOIN entity_labels AS labels USING (entity_id)
    GROUP BY links.payment_fingerprint
),
reachable_labels AS (
    SELECT links.entity_id, min(fingerprint_labels.label) AS label
    FROM entity_links AS links JOIN fingerprint_labels USING (payment_fingerprint)
    GROUP BY links.entity_id
),
propagated AS (
    SELECT labels.entity_id, least(labels.label, coalesce(reachable_labels.label, labels.label)) AS label
    FROM entity_labels AS labels
    LEFT JOIN reachable_labels USING (entity_id)
)
SELECT entity.entity_id, least(entity.label, coalesce(parent.label, entity.label)) AS label
FROM propagated AS entity
LEFT JOIN propagated AS parent ON parent.entity_id = entity.label;

CREATE OR REPLACE TABLE label_changes AS
SELECT count(*) AS changed
FROM next_entity_labels AS next JOIN entity_labels AS current USING (entity_id)
WHERE next.label <> current.label;

CREATE OR REPLACE TABLE entity_labels AS SELECT * FROM next_entity_labels;
