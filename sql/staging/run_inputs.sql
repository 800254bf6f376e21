-- One row per input file of the run: what it was and how its rows were accounted for.
-- rows_read = rows_after_as_of + rows_in; rows_in = rows_loaded + rows_quarantined.
CREATE OR REPLACE TABLE run_inputs (
    source VARCHAR,
    file_name VARCHAR,
    format VARCHAR,
    sha256 VARCHAR,
    size_bytes BIGINT,
    extra_columns VARCHAR[],
    rows_read BIGINT,
    rows_after_as_of BIGINT,
    rows_in BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT
);
