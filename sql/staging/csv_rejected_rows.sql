/* @step
creates = ["csv_rejected_rows"]
reads = ["csv_rejects"]
*/
-- Rows the CSV reader could not split into the header's columns, one row each.
-- reader_line is DuckDB's number for the row (physical lines less the newlines inside quoted
-- fields); line starts equal to it and is corrected to the physical line when the file has
-- multi-line fields or blank lines.
CREATE OR REPLACE TEMP TABLE csv_rejected_rows AS
SELECT CAST(line AS BIGINT) AS reader_line,
       CAST(line AS BIGINT) AS line,
       string_agg(column_name, ', ' ORDER BY column_idx) AS column_name,
       trim(first(csv_line), chr(13) || chr(10)) AS csv_line,
       'row cannot be split into the header''s columns: ' || string_agg(DISTINCT error_message, '; ' ORDER BY error_message) AS message
FROM csv_rejects
GROUP BY line;
