/* @step
creates = ["entities"]
reads = ["currencies"]
params = ["background_entities"]
*/
-- Background entities: real-name verified people and companies, each with 1-4 accounts
-- (account_no = entity_no * 4 + slot), 1-2 SDKAppIDs per account for packages, one
-- pay-as-you-go SDKAppID, a currency, a card, and how many packages it buys in the year.
CREATE OR REPLACE TABLE entities AS
SELECT e AS entity_no,
       CASE WHEN rnd(e, 'accounts') < 0.70 THEN 1
            WHEN rnd(e, 'accounts') < 0.90 THEN 2
            WHEN rnd(e, 'accounts') < 0.97 THEN 3 ELSE 4 END AS n_accounts,
       -- Purchases in the year: 1 + a geometric count, at most 24, so that an entity's
       -- packages are at least ~15 days apart (no concurrent refunds by accident).
       CAST(least(24, 1 + floor(-ln(1 - rnd(e, 'orders')) * 4.7)) AS BIGINT) AS n_orders,
       rnd(e, 'phase') AS phase,
       currency.currency,
       currency.cny_per_unit,
       card('own', e) AS own_card,
       -- 20% also pay with a second card of their own; 3% with the card of another
       -- background entity (a family or a holding company): small linked groups.
       CASE WHEN rnd(e, 'household') < 0.03
            THEN card('own', pick(e, 'partner', 0, getvariable('background_entities') - 1))
            WHEN rnd(e, 'second_card') < 0.20 THEN card('second', e) END AS other_card
FROM range(getvariable('background_entities')) AS entity(e)
JOIN currencies AS currency ON rnd(e, 'currency') >= currency.lo AND rnd(e, 'currency') < currency.hi;
