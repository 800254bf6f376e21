-- Where each CSV row starts: its line in the file, the header being line 1.
--
-- DuckDB keeps the rows it could read in file order (raw_rows.rowid) and numbers the
-- rows it rejected by record (csv_rejects.line, header = 1). A record's line is therefore
-- 1 + its record number + the newlines embedded (in quoted fields) in the records before
-- it. Input: raw_rows, csv_rejects, multiline_rows(_row, newlines).
-- Output: line_shifts(from_row, shift), to add to rowid + 2 for rows with rowid >= from_row
-- (empty for the common file), and csv_rejected_rows(line, column_name, csv_line, message).

CREATE OR REPLACE TEMP TABLE rejected_records AS
SELECT line - 1 AS record,
       -- rows read before this rejected record
       line - 1 - row_number() OVER (ORDER BY line) AS good_rows_before,
       column_name,
       csv_line,
       length(csv_line) - length(replace(csv_line, chr(10), '')) AS newlines,
       message
FROM (
    SELECT line,
           string_agg(column_name, ', ' ORDER BY column_idx) AS column_name,
           first(csv_line) AS csv_line,
           'row cannot be split into the header''s columns: '
               || string_agg(DISTINCT error_message, '; ') AS message
    FROM csv_rejects
    GROUP BY line
);

-- Each event moves the lines of every later row down: a rejected record by itself and
-- its embedded newlines, a multi-line row by its embedded newlines.
CREATE OR REPLACE TEMP TABLE line_shift_events AS
SELECT good_rows_before AS from_row, record, 1 AS records, newlines FROM rejected_records
UNION ALL
SELECT m._row + 1 AS from_row,
       m._row + 1 + (SELECT count(*) FROM rejected_records AS r WHERE r.good_rows_before <= m._row) AS record,
       0 AS records,
       m.newlines
FROM multiline_rows AS m;

CREATE OR REPLACE TEMP TABLE line_shifts AS
SELECT from_row, sum(records + newlines) OVER (ORDER BY from_row, record ROWS UNBOUNDED PRECEDING) AS shift
FROM line_shift_events
QUALIFY row_number() OVER (PARTITION BY from_row ORDER BY record DESC) = 1;

CREATE OR REPLACE TEMP TABLE csv_rejected_rows AS
SELECT 1 + r.record + coalesce((SELECT sum(e.newlines) FROM line_shift_events AS e WHERE e.record < r.record), 0) AS line,
       r.column_name, r.csv_line, r.message
FROM rejected_records AS r;
