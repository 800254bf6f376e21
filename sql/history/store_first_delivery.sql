/* @step
appends = ["{versions}"]
reads = ["delivery_{stem}"]
template = ["versions", "stem"]
*/
-- Store tonight's delivery of {stem} into {versions} when it holds no version yet (the first
-- night): every delivered row is a new record, valid from tonight for good. This is what
-- history/store_delivery.sql's upsert does on an empty table, written straight in: one pass,
-- no copy of the delivery to compare (issue #12).
INSERT INTO {versions} BY NAME
SELECT * FROM delivery_{stem};
