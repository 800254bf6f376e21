/* @step
creates = ["quarantine"]
*/
-- Every failed check of every row the run turned away: one row per (row, check).
-- A row is quarantined when it has at least one entry here.
CREATE OR REPLACE TABLE quarantine (
    source VARCHAR,    -- the export's stem, e.g. usage
    line BIGINT,       -- CSV: line where the row starts (header = 1); Parquet: 1-based row number
    "column" VARCHAR,
    "check" VARCHAR,
    value VARCHAR,     -- the offending value: as given when it did not parse, else as loaded
    message VARCHAR
);
