-- Upsert tonight's delivery of {stem} into {versions}: "records are upserted by key (a later
-- export of the same key wins; the run that last changed a row is recorded)" (issue #4).
-- Filled in per export by jobs/history.py with its own column names, never with values.
--
-- changed:  delivered rows that differ from the record as it stood before tonight;
-- earlier:  what an earlier run of this same night delivered (a rerun replaces it);
-- touched:  keys whose version of tonight is new, different or gone. Only those are written,
--           so a rerun on the same files leaves every version, and its _run_id, as it was.
CREATE OR REPLACE TEMP TABLE changed AS
SELECT {columns} FROM delivered_{stem}
EXCEPT
SELECT {columns} FROM stored_{stem};

CREATE OR REPLACE TEMP TABLE earlier AS
SELECT {columns} FROM {versions} WHERE _valid_from = getvariable('as_of');

CREATE OR REPLACE TEMP TABLE touched AS
SELECT {key} FROM (FROM changed EXCEPT FROM earlier)
UNION
SELECT {key} FROM (FROM earlier EXCEPT FROM changed);

DELETE FROM {versions} AS versions
WHERE _valid_from = getvariable('as_of')
  AND EXISTS (SELECT 1 FROM touched WHERE {touched_match});

INSERT INTO {versions} BY NAME
SELECT record.*
FROM {stem} AS record
SEMI JOIN touched USING ({key})
SEMI JOIN changed USING ({key})
WHERE record._run_id = getvariable('run_id');

-- Each version is valid until the next version of its key, or for good (NULL).
UPDATE {versions} AS versions
SET _valid_to = following._valid_to
FROM (
    SELECT {key}, _valid_from,
           lead(_valid_from) OVER (PARTITION BY {key} ORDER BY _valid_from) AS _valid_to
    FROM {versions}
    SEMI JOIN touched USING ({key})
) AS following
WHERE {following_match}
  AND versions._valid_from = following._valid_from
  AND versions._valid_to IS DISTINCT FROM following._valid_to;

DROP TABLE changed;
DROP TABLE earlier;
DROP TABLE touched;
