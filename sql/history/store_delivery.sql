/* @step
creates = ["changed", "earlier", "kept", "touched"]
appends = ["{versions}"]
reads = ["delivery_{stem}", "stored_{stem}"]
params = ["as_of"]
template = ["versions", "stem", "key", "first_key", "tonight_columns", "stored_columns", "earlier_columns", "kept_match", "following_match"]
*/
-- Upsert tonight's delivery of {stem} into {versions}: "records are upserted by key (a later
-- export of the same key wins; the run that last changed a row is recorded)" (issue #4).
-- Filled in per export by jobs/stages/history.py with its own column names, never with values.
--
-- changed:    tonight's rows that change their record: a new key, or SPEC columns that differ
--             from the record as it stood before tonight (extra columns are not compared);
-- earlier:    what an earlier run of this same night delivered (a rerun replaces it);
-- kept:       tonight's changes an earlier run of this night already stored as they are: left
--             alone, so a rerun on the same files rewrites no version and keeps its _run_id;
-- touched:    keys whose version of tonight is new, different or gone;
-- revalidate: of those, the keys with versions of other nights, whose validity ranges move.
CREATE OR REPLACE TEMP TABLE changed AS
SELECT tonight.*
FROM delivery_{stem} AS tonight
LEFT JOIN stored_{stem} AS stored USING ({key})
WHERE stored.{first_key} IS NULL OR ({tonight_columns}) IS DISTINCT FROM ({stored_columns});

CREATE OR REPLACE TEMP TABLE earlier AS
SELECT * FROM {versions} WHERE _valid_from = getvariable('as_of');

CREATE OR REPLACE TEMP TABLE kept AS
SELECT {key} FROM changed AS tonight JOIN earlier USING ({key})
WHERE ({tonight_columns}) IS NOT DISTINCT FROM ({earlier_columns});

CREATE OR REPLACE TEMP TABLE touched AS
SELECT {key} FROM changed ANTI JOIN kept USING ({key})
UNION ALL
SELECT {key} FROM earlier ANTI JOIN changed USING ({key});

DELETE FROM {versions} AS versions
WHERE _valid_from = getvariable('as_of')
  AND NOT EXISTS (SELECT 1 FROM kept WHERE {kept_match});

CREATE OR REPLACE TEMP TABLE revalidate AS
SELECT DISTINCT {key} FROM {versions} SEMI JOIN touched USING ({key});

INSERT INTO {versions} BY NAME
SELECT * FROM changed ANTI JOIN kept USING ({key});

-- Each version is valid until the next version of its key, or for good (NULL).
UPDATE {versions} AS versions
SET _valid_to = following._valid_to
FROM (
    SELECT {key}, _valid_from,
           lead(_valid_from) OVER (PARTITION BY {key} ORDER BY _valid_from) AS _valid_to
    FROM {versions}
    SEMI JOIN revalidate USING ({key})
) AS following
WHERE {following_match}
  AND versions._valid_from = following._valid_from
  AND versions._valid_to IS DISTINCT FROM following._valid_to;

DROP TABLE changed;
DROP TABLE earlier;
DROP TABLE kept;
DROP TABLE touched;
DROP TABLE revalidate;
