/* @step
creates = ["gate_results", "gate_number", "gate_age", "gate_nights"]
*/
-- gate_results: one row per gate and export, filled by freshness.sql and volume.sql
-- (docs/gates.md). passed is NULL when the gate made no judgement (turned off, too little history,
-- no file read); observed, expected and message are for people.
CREATE OR REPLACE TABLE gate_results (
    run_id VARCHAR,
    as_of DATE,
    gate VARCHAR,
    source VARCHAR,
    passed BOOLEAN,
    observed VARCHAR,
    expected VARCHAR,
    message VARCHAR
);

-- A count of rows or a median, as people read it: 1,234 or 1,234.5.
CREATE OR REPLACE TEMP MACRO gate_number(x) AS regexp_replace(format('{:,.1f}', x::DOUBLE), '\.0$', '');

-- An age in seconds as hours, minutes and whole seconds (rounded up, so that an age over a
-- limit by less than a second still reads as over it): 27h00m01s.
CREATE OR REPLACE TEMP MACRO gate_age(seconds) AS
    printf('%dh%02dm%02ds', ceil(seconds)::BIGINT // 3600, ceil(seconds)::BIGINT % 3600 // 60,
           ceil(seconds)::BIGINT % 60);

-- "1 earlier night", "14 earlier nights".
CREATE OR REPLACE TEMP MACRO gate_nights(n) AS n || ' earlier night' || CASE WHEN n = 1 THEN '' ELSE 's' END;
