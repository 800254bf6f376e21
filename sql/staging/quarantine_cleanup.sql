/* @step
appends = ["quarantine"]
*/
-- A value that does not parse is reported once, as a type error, not also as missing.
DELETE FROM quarantine AS missing
WHERE missing."check" = 'not_nullable'
  AND EXISTS (
      SELECT 1 FROM quarantine AS typed
      WHERE typed."check" = 'type'
        AND typed.source = missing.source
        AND typed.line = missing.line
        AND typed."column" = missing."column"
  );
