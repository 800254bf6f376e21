-- Who shares each payment fingerprint. SPEC 5 links entities "joined, directly or through
-- others, by a shared non-null payment_fingerprint"; a fingerprint shared by more than
-- linked_fingerprint_max_entities entities (a wallet provider, a reseller's card) is
-- reported here but does not link, so one instrument does not glue the world together.
CREATE OR REPLACE TABLE entity_fingerprints AS
SELECT DISTINCT entity_id, payment_fingerprint
FROM purchases
WHERE payment_fingerprint IS NOT NULL;

CREATE OR REPLACE TABLE fingerprint_sharing AS
SELECT masked_fingerprint(payment_fingerprint) AS fingerprint,
       payment_fingerprint,
       count(*) AS entity_count,
       count(*) BETWEEN 2 AND getvariable('linked_fingerprint_max_entities') AS links_entities,
       list(entity_id ORDER BY entity_id) AS entity_ids
FROM entity_fingerprints
GROUP BY payment_fingerprint
HAVING count(*) >= 2;
