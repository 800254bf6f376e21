/* @step
creates = ["next_entity_labels", "label_changes", "entity_labels"]
reads = ["entity_labels", "entity_links"]
repeat_until = "SELECT changed = 0 FROM label_changes"
max_rounds = 1000
*/
-- One round of label propagation; leaves `label_changes`, the number of entities relabelled.
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
)
SELECT labels.entity_id, least(labels.label, coalesce(reachable_labels.label, labels.label)) AS label
FROM entity_labels AS labels
LEFT JOIN reachable_labels USING (entity_id);

CREATE OR REPLACE TABLE label_changes AS
SELECT count(*) AS changed
FROM next_entity_labels AS next JOIN entity_labels AS current USING (entity_id)
WHERE next.label <> current.label;

CREATE OR REPLACE TABLE entity_labels AS SELECT * FROM next_entity_labels;
