/* @step
creates = ["run_record"]
reads = ["refund_flags", "refund_verdicts", "rule_catalog", "run_inputs"]
params = ["as_of", "billing_tz", "code_version", "config_hash", "input_dir", "refund_window_days", "run_finished_at", "run_id", "run_mode", "run_started_at", "stage_seconds", "step_seconds"]
*/
-- runs (SPEC 6): one row per run. Input files with their sha256 and row counts come from
-- run_inputs; flag counts from refund_flags. The run's own figures arrive as variables.
CREATE OR REPLACE TABLE run_record AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       getvariable('run_started_at') AS started_at,
       getvariable('run_finished_at') AS finished_at,
       'succeeded' AS status,
       getvariable('run_mode') AS mode,
       getvariable('input_dir') AS input_dir,
       coalesce((SELECT list({'source': source, 'file_name': file_name, 'format': format, 'sha256': sha256,
                              'size_bytes': size_bytes, 'extra_columns': extra_columns, 'rows_read': rows_read,
                              'rows_after_as_of': rows_after_as_of, 'rows_in': rows_in,
                              'rows_loaded': rows_loaded, 'rows_quarantined': rows_quarantined} ORDER BY source)
                 FROM run_inputs), []) AS input_files,  -- each input's row (its fields spelled: Spark has no row value)
       (SELECT coalesce(sum(rows_in), 0) FROM run_inputs)::BIGINT AS rows_in,
       (SELECT coalesce(sum(rows_loaded), 0) FROM run_inputs)::BIGINT AS rows_loaded,
       (SELECT coalesce(sum(rows_quarantined), 0) FROM run_inputs)::BIGINT AS rows_quarantined,
       (SELECT count(*) FROM refund_verdicts) AS refunds_checked,
       (SELECT count(*) FROM refund_flags) AS flag_count,
       (SELECT map(list(rule_code ORDER BY position), list(flags ORDER BY position))
        FROM (SELECT rule.position, rule.rule_code, count(flag.rule_code) AS flags
              FROM rule_catalog AS rule LEFT JOIN refund_flags AS flag USING (rule_code)
              GROUP BY ALL)) AS flag_counts,
       getvariable('billing_tz') AS billing_time_zone,
       getvariable('refund_window_days') AS refund_window_days,
       getvariable('config_hash') AS config_hash,
       getvariable('code_version') AS code_version,
       getvariable('stage_seconds') AS stage_seconds,
       getvariable('step_seconds') AS step_seconds;
