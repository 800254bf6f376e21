/* @step
creates = ["entity_fingerprints", "fingerprint_sharing"]
reads = ["purchases"]

[settings]  # [signals] keys of the config, with their defaults
linked_fingerprint_max_entities = 20
*/
-- Who shares each payment fingerprint. SPEC 5 links entities "joined, directly or through
-- others, by a shared non-null payment_fingerprint"; a fingerprint shared by more than
-- linked_fingerprint_max_entities entities (a wallet provider, a reseller's card) is
-- reported here but does not link, so one instrument does not glue the world together.
-- Published as is, so the fingerprint appears only masked.
CREATE OR REPLACE TABLE entity_fingerprints AS
SELECT DISTINCT entity_id, payment_fingerprint,
       count(*) OVER (PARTITION BY payment_fingerprint) AS entities_sharing
FROM (SELECT DISTINCT entity_id, payment_fingerprint FROM purchases WHERE payment_fingerprint IS NOT NULL);

CREATE OR REPLACE TABLE fingerprint_sharing AS
SELECT masked_fingerprint(payment_fingerprint) AS fingerprint,
       count(*) AS entity_count,
       count(*) <= getvariable('linked_fingerprint_max_entities') AS links_entities,
       list(entity_id ORDER BY entity_id) AS entity_ids
FROM entity_fingerprints
WHERE entities_sharing >= 2
GROUP BY payment_fingerprint;
