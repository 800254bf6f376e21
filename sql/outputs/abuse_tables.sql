-- abuse_signals and abuse_cases (SPEC 6) with the SPEC's columns. The signals and cases of
-- SPEC section 5 are computed by the abuse-detection stage (issue #3); until it lands these
-- tables are published empty so that readers can rely on their shape.
CREATE OR REPLACE TABLE abuse_signals (
    run_id VARCHAR, as_of DATE, entity_id VARCHAR, signal_code VARCHAR,
    evidence VARCHAR, refund_ids VARCHAR[]
);
CREATE OR REPLACE TABLE abuse_cases (
    run_id VARCHAR, as_of DATE, case_id VARCHAR, entity_ids VARCHAR[], signal_codes VARCHAR[],
    score DOUBLE, refund_count BIGINT, amount_refunded DECIMAL(18,2), disposition VARCHAR
);
