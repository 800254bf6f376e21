/* @step
creates = ["entity_groups", "group_accounts"]
reads = ["entity_labels", "purchases"]
*/
-- entity_groups: one row per entity, with its linked group (an entity with no links is its
-- own group of one) and the accounts of the group (SPEC 5: "An entity's accounts are the
-- account_ids of its purchases").
CREATE OR REPLACE TABLE entity_groups AS
SELECT entity_id,
       'G-' || label AS group_id,
       count(*) OVER (PARTITION BY label) AS group_size
FROM entity_labels;

CREATE OR REPLACE TABLE group_accounts AS
SELECT DISTINCT groups.group_id, purchase.entity_id, purchase.account_id
FROM purchases AS purchase
JOIN entity_groups AS groups USING (entity_id);
