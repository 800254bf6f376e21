/* @step
creates = ["entity_links", "entity_labels"]
reads = ["entity_fingerprints", "purchases"]
params = ["linked_fingerprint_max_entities"]
*/
-- Linked groups are the connected components of the entity - fingerprint graph, found by
-- label propagation: every entity starts with its own id as label, and each round gives
-- every entity the smallest label seen through any linking fingerprint, until nothing
-- changes (jobs/stages/abuse.py repeats 21_entity_groups_round.sql). The smallest entity id of a
-- group is its label, so a group keeps its id from night to night while its members stay.
CREATE OR REPLACE TABLE entity_links AS
SELECT entity_id, payment_fingerprint
FROM entity_fingerprints
WHERE entities_sharing BETWEEN 2 AND getvariable('linked_fingerprint_max_entities');

CREATE OR REPLACE TABLE entity_labels AS
SELECT DISTINCT entity_id, entity_id AS label FROM purchases;
