/* @step
creates = ["prior_case_members"]
*/
-- The members of last night's cases, read from the warehouse before tonight's cases are
-- built, so that a case keeps its id when its group changes (jobs/stages/dispositions.py fills it).
CREATE OR REPLACE TABLE prior_case_members (case_id VARCHAR, entity_id VARCHAR);
